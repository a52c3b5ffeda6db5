"""Exit statuses shared by the commands."""

#: The job finished and returned a result.
OK = 0
#: The program failed, crashed or ran too long.
JOB_FAILED = 1
#: Bad usage: arguments, metadata, source or inputs were refused before running.
BAD_INPUT = 2
