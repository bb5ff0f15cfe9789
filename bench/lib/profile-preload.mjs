// Loaded into the coordinator with `--import` when the bench profiles it (DTX_BENCH_PROFILE=1).
// `node --cpu-prof` writes its profile only when the process exits normally, not when a signal kills it.
// So on SIGTERM / SIGINT: if the server installed no handler of its own, exit normally at once; if it did,
// let it shut down gracefully, and exit normally after a few seconds in case it does not.
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    if (process.listenerCount(sig) === 1) process.exit(0);
    setTimeout(() => process.exit(0), 5000).unref();
  });
}
