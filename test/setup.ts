// Keep test output readable: Powertools loggers write JSON to stdout unless told otherwise.
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_DEV ??= 'false';
// The tools run on Node 20 on purpose (the Lambdas run on 22): the SDK's reminder is noise in test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
