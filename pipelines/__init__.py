"""feedloom item pipelines and the modules beside the store: metadata -> html -> dedupe -> store."""
