"""Scoped tags: a conftest's ``local_tags`` make tags local to its directory tree."""

from __future__ import annotations

import textwrap

import pytest

from pytest_pexen._metadata import Meta
from pytest_pexen._resume import PAUSED
from pytest_pexen._scopes import TagScopes

LOCAL_BUILD = "pexen_defaults = {'local_tags': ['build']}\n"

BUILD_AND_TEST = '''
import pytest

@pytest.mark.pexen(provides=["build"])
def test_build():
    {body}

@pytest.mark.pexen(requires=["build"])
def test_use():
    pass
'''


@pytest.fixture
def tree(pytester, suite):
    """Write files (dedented) under the suite: {"a/conftest.py": "..."}."""
    suite()

    def write(files: dict[str, str]) -> None:
        for name, text in files.items():
            path = pytester.path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))

    return write


def build_and_test(passes: bool) -> str:
    return BUILD_AND_TEST.format(body="pass" if passes else "assert False")


def test_two_subtrees_each_have_their_own_build(tree, run):
    # With one global "build", a's failed build would block b's test too.
    tree(
        {
            "a/conftest.py": LOCAL_BUILD,
            "a/test_a.py": build_and_test(passes=False),
            "b/conftest.py": LOCAL_BUILD,
            "b/test_b.py": build_and_test(passes=True),
        }
    )
    result = run("--pexen")
    result.assert_outcomes(passed=2, failed=1)
    assert result.parseoutcomes()["blocked"] == 1
    result.stdout.fnmatch_lines(
        ["BLOCKED a/test_a.py::test_use - requires 'build@a', provided by a/test_a.py::test_build which failed"]
    )


def test_a_local_tag_is_another_tag_outside_its_tree(tree, run, events):
    tree(
        {
            "a/conftest.py": LOCAL_BUILD,
            "a/test_a.py": build_and_test(passes=True),
            "test_outside.py": '''
            import pytest

            @pytest.mark.pexen(requires=["build"])
            def test_outside():
                pass
            ''',
        }
    )
    result = run("--pexen")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: no test provides these tags*",
            "  tag 'build', needed by: test_outside.py::test_outside",
            "note: a tag that a conftest's pexen_defaults make local (local_tags) is another tag outside *",
            "  needed 'build' (global); provided 'build@a' (local to a/)",
        ]
    )
    assert events().names() == []


def test_a_requirement_inside_a_tree_does_not_see_a_provider_outside_it(tree, run):
    tree(
        {
            "a/conftest.py": LOCAL_BUILD,
            "a/test_a.py": '''
            import pytest

            @pytest.mark.pexen(requires=["build"])
            def test_use():
                pass
            ''',
            "test_build.py": '''
            import pytest

            @pytest.mark.pexen(provides=["build"])
            def test_build():
                pass
            ''',
        }
    )
    result = run("--pexen")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "  tag 'build@a', needed by: a/test_a.py::test_use",
            "  needed 'build@a' (local to a/); provided 'build' (global)",
        ]
    )


def test_the_nearest_declaring_directory_wins(tree, run):
    tree(
        {
            "a/conftest.py": LOCAL_BUILD,
            "a/test_a.py": build_and_test(passes=True),
            # No conftest of its own: sees a's build.
            "a/plain/test_plain.py": '''
            import pytest

            @pytest.mark.pexen(requires=["build"])
            def test_plain():
                pass
            ''',
            "a/inner/conftest.py": LOCAL_BUILD,
            "a/inner/test_inner.py": build_and_test(passes=False),
        }
    )
    result = run("--pexen")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "BLOCKED a/inner/test_inner.py::test_use - requires 'build@a/inner', "
            "provided by a/inner/test_inner.py::test_build which failed"
        ]
    )
    assert "BLOCKED a/plain" not in result.stdout.str()


def test_the_same_name_global_and_local_is_no_clash(tree, run):
    # The global build fails; the tree's own passes: only the global one's dependents are blocked.
    tree(
        {
            "test_top.py": build_and_test(passes=False),
            "a/conftest.py": LOCAL_BUILD,
            "a/test_a.py": build_and_test(passes=True),
        }
    )
    result = run("--pexen")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["BLOCKED test_top.py::test_use - requires 'build', provided by test_top.py::test_build which failed"]
    )


def test_a_test_outside_names_a_local_tag_with_its_directory(tree, run, events):
    tree(
        {
            "a/conftest.py": LOCAL_BUILD,
            "a/test_a.py": build_and_test(passes=True),
            "test_report.py": '''
            import pytest

            @pytest.mark.pexen(after=["build@a"])
            def test_report():
                pass
            ''',
        }
    )
    run("--pexen").assert_outcomes(passed=3)
    log = events()
    assert log.start("test_report") >= log.end("test_build")


def test_a_cycle_names_the_scoped_tags(tree, run):
    tree(
        {
            "a/conftest.py": "pexen_defaults = {'local_tags': ['one', 'two']}\n",
            "a/test_cycle.py": '''
            import pytest

            @pytest.mark.pexen(requires=["one"], provides=["two"])
            def test_x():
                pass

            @pytest.mark.pexen(requires=["two"], provides=["one"])
            def test_y():
                pass
            ''',
        }
    )
    result = run("--pexen")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: dependency cycle, no test in it can ever start:",
            "  a/test_cycle.py::test_x requires 'one@a', provided by",
            "  a/test_cycle.py::test_y requires 'two@a', provided by",
            "  a/test_cycle.py::test_x",
        ]
    )


def test_a_selection_pulls_in_the_provider_of_its_own_scope(tree, run):
    tree(
        {
            "a/conftest.py": LOCAL_BUILD,
            "a/test_a.py": build_and_test(passes=True),
            "b/conftest.py": LOCAL_BUILD,
            "b/test_b.py": build_and_test(passes=True),
        }
    )
    result = run("--pexen", "-k", "test_b and use")
    result.assert_outcomes(passed=2, deselected=2)
    result.stdout.fnmatch_lines(["pexen: pulled in 1 test that the selection requires: b/test_b.py::test_build *"])


def test_a_breakpoint_names_a_local_tag_by_its_scoped_name(tree, run, events):
    tree(
        {
            "a/conftest.py": LOCAL_BUILD,
            "a/test_a.py": build_and_test(passes=True),
            "test_top.py": '''
            import pytest

            @pytest.mark.pexen(requires=["build@a"])
            def test_top():
                pass
            ''',
        }
    )
    result = run("--pexen", "--pexen-break=tag:build@a", "--pexen-break=tag:build")
    assert result.ret == PAUSED
    result.stdout.fnmatch_lines(
        [
            "pexen: --pexen-break matches no selected test: tag:build",
            "*breakpoint tag:build@a: stopped before a/test_a.py::test_build*",
        ]
    )
    assert events().names() == []


@pytest.mark.parametrize(
    "defaults, message",
    [
        ("{'local_tags': 5}", "pexen field 'local_tags' must be a list or set of strings, got 5 (int)"),
        ("{'local_tags': ['build', '']}", "pexen field 'local_tags' must be a list or set of non-empty strings"),
        ("{'local_tags': ['build@a']}", "'local_tags' names tags as tests write them, without '@'*got 'build@a'"),
    ],
)
def test_bad_local_tags_are_a_usage_error_naming_the_conftest(tree, run, defaults, message):
    tree({"a/conftest.py": f"pexen_defaults = {defaults}\n", "a/test_a.py": "def test_it():\n    pass\n"})
    result = run("--pexen")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: */a/conftest.py: pexen_defaults: {message}*"])


def test_local_tags_in_a_marker_are_refused(tree, run):
    tree(
        {
            "test_m.py": '''
            import pytest

            @pytest.mark.pexen(local_tags=["build"])
            def test_it():
                pass
            '''
        }
    )
    result = run("--pexen")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: test_m.py::test_it: 'local_tags' can only be given in a conftest's pexen_defaults*"]
    )


def test_names_are_looked_up_from_the_test_directory_alternatives_included(tmp_path):
    scopes = TagScopes(tmp_path, {tmp_path: ["db"], tmp_path / "a": ["build"]})
    meta = Meta(requires=(("build", "prebuilt"), ("db",)), provides=("image",), after=("build",))
    seen = scopes.resolve(meta, tmp_path / "a" / "b" / "test_x.py")
    assert seen.requires == (("build@a", "prebuilt"), ("db@.",))
    assert (seen.provides, seen.after) == (("image",), ("build@a",))
    assert scopes.resolve(meta, tmp_path.parent / "test_y.py") == meta  # outside the rootdir's scope
