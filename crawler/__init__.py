"""feedloom: the Scrapy project and the application around it."""
