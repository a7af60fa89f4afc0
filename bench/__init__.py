"""The crawl benchmark: a seeded synthetic corpus, a local server for it, and a runner that times crawlers on it."""
