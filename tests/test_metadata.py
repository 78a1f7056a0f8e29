"""The pexen marker and conftest ``pexen_defaults``: merging and validation."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "marker, message",
    [
        ("requirez=['x']", "unknown pexen field 'requirez' (did you mean 'requires'?)"),
        ("requires=5", "pexen field 'requires' must be a list or set of tags, got 5 (int)"),
        ("provides=['ok', 3]", "pexen field 'provides' must be a list or set of non-empty strings, got 3"),
        ("priority='high'", "pexen field 'priority' must be an integer, got 'high' (str)"),
        ("priority=True", "pexen field 'priority' must be an integer, got True (bool)"),
        ("timeout=0", "pexen field 'timeout' must be a finite number greater than 0 and at most *, got 0"),
        ("timeout=float('nan')", "pexen field 'timeout' must be a finite number greater than 0*, got nan"),
        ("timeout=float('inf')", "pexen field 'timeout' must be a finite number greater than 0*, got inf"),
        ("timeout=10**400", "pexen field 'timeout' must be a finite number greater than 0*, got 1000*"),
        ("retry_delay=float('nan')", "pexen field 'retry_delay' must be a finite number at least 0*, got nan"),
        ("retry_delay=float('-inf')", "pexen field 'retry_delay' must be a finite number at least 0*, got -inf"),
        ("retry_delay=1e9", "pexen field 'retry_delay' must be a finite number at least 0 and at most 86400*"),
        ("retries=-1", "pexen field 'retries' must be from 0 to 1000, got -1"),
        ("retries=10**6", "pexen field 'retries' must be from 0 to 1000, got 1000000"),
        ("priority=2**40", "pexen field 'priority' must be from -2147483648 to 2147483647, got 1099511627776"),
        ("group=''", "pexen field 'group' must be a non-empty string"),
        ("on_resume='maybe'", "pexen field 'on_resume' must be one of 'rerun', 'crash', got 'maybe'"),
        ("requires=[()]", "pexen field 'requires' must be a non-empty tuple of alternatives"),
    ],
)
def test_bad_marker_is_a_usage_error_naming_test_and_field(suite, run, events, marker, message):
    suite(
        test_bad=f'''
        import pytest

        @pytest.mark.pexen({marker})
        def test_it():
            pass
        '''
    )
    result = run("--pexen")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: test_bad.py::test_it: {message}*"])
    assert events().names() == []


def test_positional_marker_arguments_are_rejected(suite, run):
    suite(test_pos="import pytest\n\n@pytest.mark.pexen('x')\ndef test_it():\n    pass\n")
    result = run("--pexen")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*test_pos.py::test_it: the pexen marker takes keyword arguments only*"])


def test_bad_conftest_defaults_name_the_conftest(pytester, suite, run):
    sub = pytester.mkdir("sub")
    (sub / "conftest.py").write_text("pexen_defaults = {'priorty': 1}\n")
    (sub / "test_s.py").write_text("def test_it():\n    pass\n")
    result = run("--pexen")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*sub/conftest.py: pexen_defaults: unknown pexen field 'priorty'*"])


def test_conftest_defaults_must_be_a_dict(pytester, suite, run):
    sub = pytester.mkdir("sub")
    (sub / "conftest.py").write_text("pexen_defaults = ['requires']\n")
    (sub / "test_s.py").write_text("def test_it():\n    pass\n")
    result = run("--pexen")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*sub/conftest.py: pexen_defaults must be a dict, got list*"])


def test_conftest_defaults_apply_to_their_directory_and_below(pytester, suite, run, events):
    deploy = pytester.mkdir("deploy")
    (deploy / "conftest.py").write_text("pexen_defaults = {'requires': ['image']}\n")
    suite(
        **{
            "deploy/nested/test_deep": "def test_deep():\n    pass\n",
            "deploy/test_deploy": "def test_deploy():\n    pass\n",
            "test_image": '''
            import time, pytest

            @pytest.mark.pexen(provides=["image"])
            def test_image():
                time.sleep(0.2)

            def test_beside():
                time.sleep(0.2)
            ''',
        }
    )
    run("--pexen", "--pexen-workers=2").assert_outcomes(passed=4)
    log = events()
    assert log.start("test_deploy") >= log.end("test_image")
    assert log.start("test_deep") >= log.end("test_image")
    assert log.start("test_beside") < log.end("test_image")


def test_nearest_scalar_wins_and_lists_add_up(pytester, suite, run, events):
    deep = pytester.mkdir("deep")
    (deep / "conftest.py").write_text("pexen_defaults = {'priority': 5, 'requires': ['a']}\n")
    suite(
        **{
            "deep/test_deep": '''
            import pytest

            pytestmark = pytest.mark.pexen(requires=["b"])

            class TestGroup:
                pytestmark = pytest.mark.pexen(priority=-1)

                def test_early(self):
                    pass

            def test_late():
                pass
            ''',
            "test_top": '''
            import pytest

            @pytest.mark.pexen(provides=["a"])
            def test_a():
                pass

            @pytest.mark.pexen(provides=["b"])
            def test_b():
                pass

            def test_free():
                pass
            ''',
        }
    )
    run("--pexen", "--pexen-workers=1").assert_outcomes(passed=5)
    # Both deep tests wait for a and b; the class's priority -1 (nearest)
    # puts test_early before test_late, whose priority 5 comes from the
    # conftest and also puts it after the free test.
    names = events().names()
    assert [n for n in names if n != "test_free"] == ["test_a", "test_b", "test_early", "test_late"]
    assert names.index("test_free") < names.index("test_late")


def test_sets_are_accepted_for_lists(suite, run):
    suite(
        test_sets='''
        import pytest

        @pytest.mark.pexen(provides={"x", "y"})
        def test_make():
            pass

        @pytest.mark.pexen(requires={"x", "y"})
        def test_use():
            pass
        '''
    )
    run("--pexen").assert_outcomes(passed=2)


def test_marker_is_registered_for_strict_markers(suite, run):
    suite(test_strict="import pytest\n\n@pytest.mark.pexen(priority=1)\ndef test_it():\n    pass\n")
    run("--strict-markers").assert_outcomes(passed=1)
    run("--strict-markers", "--pexen").assert_outcomes(passed=1)


@pytest.mark.parametrize("value", ["0", "many", "-2", "", "1.5", "100000"])
def test_bad_worker_count_is_a_usage_error(suite, run, value):
    suite(test_w="def test_it():\n    pass\n")
    result = run("--pexen", f"--pexen-workers={value}")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [f"*--pexen-workers must be a whole number from 1 to 1024, or 'auto', got '{value}'*"]
    )


@pytest.mark.parametrize(
    "option, message",
    [
        ("--pexen-timeout=nan", "--pexen-timeout must be a number of seconds greater than 0*, got 'nan'"),
        ("--pexen-timeout=inf", "--pexen-timeout must be a number of seconds greater than 0*, got 'inf'"),
        ("--pexen-session-timeout=-1", "--pexen-session-timeout must be a number of seconds*, got '-1'"),
        ("--pexen-session-timeout=soon", "--pexen-session-timeout must be a number of seconds*, got 'soon'"),
        ("--pexen-max-crashes=0", "--pexen-max-crashes must be at least 1, got 0"),
        ("-opexen_timeout=nan", "ini pexen_timeout must be a number of seconds greater than 0*, got 'nan'"),
        ("-opexen_workers=none", "ini pexen_workers must be a whole number from 1 to 1024, or 'auto', got 'none'"),
        ("-opexen_groups=vm: workers=0", "ini pexen_groups line 1 ('vm: workers=0'): workers of group 'vm'*"),
    ],
)
def test_bad_options_are_usage_errors_before_collection(pytester, suite, run, option, message):
    # Collecting the module would leave a mark: a bad option must stop the run first.
    suite(test_o="open('collected', 'w').close()\n\ndef test_it():\n    pass\n")
    result = run("--pexen", option)
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert not (pytester.path / "collected").exists()


def test_ini_sets_the_worker_count(pytester, suite, run, events):
    pytester.makeini("[pytest]\npexen_workers = 1\n")
    suite(
        test_ini='''
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_it(n):
            pass
        '''
    )
    run("--pexen").assert_outcomes(passed=4)
    assert len(events().pids()) == 1
