// Keep test output readable: Powertools loggers write JSON to stdout unless told otherwise.
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_DEV ??= 'false';
