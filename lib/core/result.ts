// What a command's run() returns when it must print JSON and still exit non-zero.

/** What run() returns to print JSON and still exit non-zero (an eval that failed but reported). */
export class CliResult {
  constructor(
    readonly output: unknown,
    readonly exitCode: number,
  ) {}
}
