"""feedloom: the Scrapy project and the application around it."""

import pipelines  # noqa: F401 - picks the SQLite (pipelines.sqlitelib) before sqlite-utils loads
