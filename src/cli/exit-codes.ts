/** Process exit statuses (sysexits.h where one fits). */
export const Exit = {
  OK: 0,
  FAILURE: 1,
  /** EX_USAGE: the command line is wrong. */
  USAGE: 64,
  /** EX_CONFIG: the configuration is wrong; nothing was started. */
  CONFIG: 78,
} as const;
