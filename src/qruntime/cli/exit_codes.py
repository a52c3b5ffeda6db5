"""Exit statuses shared by the commands."""

#: The job finished and returned a result (or the command did what it was asked).
OK = 0
#: The program failed, crashed, ran too long or was cancelled; or the server failed answering.
JOB_FAILED = 1
#: Refused before anything ran: arguments, metadata, source, inputs, unknown ids, permissions.
BAD_INPUT = 2
#: The server did not answer at all (not started, wrong URL, network down).
SERVER_UNREACHABLE = 3
#: Ctrl-C stopped the command (never the job): the shell's 128 + SIGINT.
INTERRUPTED = 130
#: ``catalogue check`` / ``publish``: the catalogue breaks a rule (one line per problem printed).
PROBLEMS_FOUND = 1
