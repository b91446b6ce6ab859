// Azurite's blob service with its extent garbage collector paced by AZURITE_GC_INTERVAL_MS
// (Azurite's default: every 10 minutes). For the load run only (benches/load.sh).
//
// Why: each overwrite of a blob (a request record, a rate-limit slot) leaves an unreferenced
// extent, and Azurite's in-memory collector removes them one by one from an indexed Loki
// collection, which costs time proportional to the collection for each extent. Ten minutes
// into a 2,000-request run there are tens of thousands, and the single-threaded emulator stops
// answering for minutes while it collects (storage calls time out). Azure Storage has no such
// pause; the run measures the function app, not the emulator's collector.
const constants = require("azurite/dist/src/blob/utils/constants");
constants.DEFAULT_GC_INTERVAL_MS = Number(process.env.AZURITE_GC_INTERVAL_MS);
require("azurite/dist/src/blob/main");
