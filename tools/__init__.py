"""Project chores the Makefile runs: the dependency audit and the development database reset."""
