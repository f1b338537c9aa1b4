"""The test suite (a package, so that its helpers import one way: ``tests.support``)."""
