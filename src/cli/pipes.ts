// A command whose reader goes away (`hmmsim selftest | head -1`) gets EPIPE on its next write.
// Exit at once and quietly, as command-line tools do when SIGPIPE ends them, instead of dying
// on an unhandled 'error' event with a stack trace. main.ts installs this for every command.

/** Exit with status 0 when a write to stdout or stderr fails with EPIPE; other errors still throw. */
export function exitQuietlyOnBrokenPipe(streams: readonly NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      throw e;
    });
  }
}
