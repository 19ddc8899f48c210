/**
 * The ledger table's index of claimed files, newest first: the operations API's file list reads it
 * (GET /v1/files), CDK creates it (lib/constructs/pipeline-tables.ts) and the embedded services create the same.
 * Only claim items carry its keys (`catalog = 'files'`, `catalogAt = '<claimedAt ISO>#<sha256>'`), so it is
 * sparse: one item per file, never one per record or answer. One partition value is enough at that rate (a claim
 * is written once per file, far under a partition's 1,000 writes a second), and it keeps the list one Query.
 */
export const CATALOG_INDEX = { name: 'FilesByClaimTime', partitionKey: 'catalog', sortKey: 'catalogAt' } as const;
