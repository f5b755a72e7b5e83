/*
 * The command line front end; main() is only a call into it.
 */
#pragma once

/* Dispatch argv to a command; returns the process exit code
 * (0 ok, 1 failure or probe not ok, 2 usage or configuration error). */
int cli_main(int argc, char **argv);
