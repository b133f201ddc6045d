"""Run a module's unittest cases as TAP (meson's protocol: 'tap'), one line per case.

Case names are PREFIX/Class/test_method; argv[0], when given, is an fnmatch pattern over them.
A skipped case prints "ok N name # SKIP reason"; a failure prints its traceback as comments.
"""
import fnmatch
import unittest


def main(module, prefix, argv):
    pattern = argv[0] if argv else "*"
    cases = []

    def flatten(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                flatten(t)
            else:
                cases.append(t)
    flatten(unittest.defaultTestLoader.loadTestsFromModule(module))

    def tap_name(c):
        return prefix + "/" + c.id().split(".", 1)[1].replace(".", "/")
    cases = [c for c in cases if fnmatch.fnmatch(tap_name(c), pattern)]
    print("TAP version 13\n1..%d" % len(cases), flush=True)
    failed = 0
    for i, c in enumerate(cases, 1):
        r = unittest.TestResult()
        c.run(r)
        name = tap_name(c)
        if r.wasSuccessful() and r.skipped:
            print("ok %d %s # SKIP %s" % (i, name, r.skipped[0][1]), flush=True)
        elif r.wasSuccessful():
            print("ok %d %s" % (i, name), flush=True)
        else:
            failed += 1
            print("not ok %d %s" % (i, name), flush=True)
            for _, tb in r.failures + r.errors:
                for line in tb.splitlines():
                    print("# " + line)
    return 1 if failed else 0
