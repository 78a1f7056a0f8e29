"""Data from providers to dependents: pexen_data, pexen_inputs, and their script twins."""

from __future__ import annotations

import os
import stat
import textwrap

import pytest

PROVIDER_AND_DEPENDENTS = """
    import os
    import pytest

    @pytest.mark.pexen(provides=["server"])
    def test_start_server(pexen_data):
        pexen_data["port"] = 8042
        pexen_data["pid"] = os.getpid()

    @pytest.mark.pexen(provides=["image"])
    def test_build_image(pexen_data):
        pexen_data["path"] = "/images/base.qcow2"

    @pytest.mark.parametrize("n", range(4))
    @pytest.mark.pexen(requires=["server"])
    def test_client(n, pexen_inputs):
        assert pexen_inputs["server"]["port"] == 8042
        assert "image" not in pexen_inputs  # only what its own providers wrote
"""


def test_dependents_read_what_their_provider_wrote_across_workers(suite, run):
    suite(test_server=PROVIDER_AND_DEPENDENTS)
    result = run("--pexen", "--pexen-workers", "2", "--pexen-affinity", "none")
    result.assert_outcomes(passed=6)


def test_a_plain_run_hands_on_data_to_the_tests_after_the_provider(suite, run):
    suite(test_server=PROVIDER_AND_DEPENDENTS)
    run().assert_outcomes(passed=6)


def test_a_plain_run_hands_on_nothing_from_a_failed_provider(suite, run):
    suite(
        test_plain="""
        import pytest

        @pytest.mark.pexen(provides=["a"])
        def test_provider(pexen_data):
            pexen_data["x"] = 1
            assert 0

        @pytest.mark.pexen(requires=["a"])
        def test_dependent(pexen_inputs):
            assert dict(pexen_inputs) == {}
        """
    )
    run().assert_outcomes(passed=1, failed=1)


def test_inputs_are_read_only(suite, run):
    suite(
        test_ro="""
        import pytest

        @pytest.mark.pexen(provides=["a"])
        def test_a(pexen_data):
            pexen_data["v"] = 1

        @pytest.mark.pexen(requires=["a"])
        def test_b(pexen_inputs):
            with pytest.raises(TypeError):
                pexen_inputs["a"] = {}
        """
    )
    run("--pexen").assert_outcomes(passed=2)


def test_several_providers_of_a_tag_are_merged_in_collection_order(suite, run):
    suite(
        test_merge="""
        import pytest

        @pytest.mark.pexen(provides=["net"])
        def test_first(pexen_data):
            pexen_data.update(a=1, shared="first")

        @pytest.mark.pexen(provides=["net"])
        def test_second(pexen_data):
            pexen_data.update(b=2, shared="second")

        @pytest.mark.pexen(requires=["net"])
        def test_use(pexen_inputs):
            assert pexen_inputs["net"] == {"a": 1, "b": 2, "shared": "second"}
        """
    )
    run("--pexen", "--pexen-workers", "2").assert_outcomes(passed=3)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lambda: None", "*pexen_data cannot be pickled, so no dependent could read it*"),
        ("'x' * 100_000", "*pexen_data takes * bytes pickled, more than the 65536 allowed*"),
    ],
)
def test_data_that_cannot_be_handed_on_is_an_error_of_the_provider(suite, run, value, message):
    suite(
        test_bad=f"""
        import pytest

        @pytest.mark.pexen(provides=["a"])
        def test_provider(pexen_data):
            pexen_data["value"] = {value}

        @pytest.mark.pexen(requires=["a"])
        def test_dependent(pexen_inputs):
            pass
        """
    )
    result = run("--pexen")
    assert result.parseoutcomes() == {"passed": 1, "errors": 1, "blocked": 1}
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_provider*", message])


def make_script(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_scripts_write_data_and_read_inputs_as_json_files(suite, run, pytester):
    pytester.makeini("[pytest]\npexen_scripts = checks\npexen_groups =\n    default: workers=2\n    sh: workers=4 pool=thread\n")
    make_script(
        pytester.path / "checks" / "make_vm.sh",
        """
        #!/bin/sh
        # pexen: provides=vm group=sh
        echo '{"address": "10.0.0.7"}' > "$PEXEN_DATA"
        """,
    )
    make_script(
        pytester.path / "checks" / "ping_vm.sh",
        """
        #!/bin/sh
        # pexen: requires=vm group=sh
        grep -q '"address": "10.0.0.7"' "$PEXEN_INPUTS"
        """,
    )
    suite(
        test_vm="""
        import pytest

        @pytest.mark.pexen(requires=["vm"])
        def test_address(pexen_inputs):
            assert pexen_inputs["vm"] == {"address": "10.0.0.7"}
        """
    )
    run("--pexen").assert_outcomes(passed=3)


def test_a_generated_task_hands_on_data_through_its_context(suite, run, extend_conftest):
    extend_conftest(
        """
        import pytest_pexen

        def make(context):
            context.data["token"] = "t-1"

        def use(context):
            assert context.inputs["token-tag"] == {"token": "t-1"}

        def pytest_pexen_generate(config, path):
            yield pytest_pexen.task("make", make, provides=["token-tag"])
            yield pytest_pexen.task("use", use, requires=["token-tag"])
        """
    )
    run("--pexen", "-v").assert_outcomes(passed=2)


def test_data_survives_a_resume(suite, run):
    suite(test_server=PROVIDER_AND_DEPENDENTS)
    first = run("--pexen", "--pexen-state=state.db", "--pexen-break=*test_client*")
    assert first.ret == 75, first.stdout.str()
    second = run("--pexen", "--pexen-state=state.db", "--pexen-resume", "-v")
    second.assert_outcomes(passed=6)
    second.stdout.fnmatch_lines(["*test_client?0? PASSED*"])


def test_the_provider_that_met_an_any_requirement_is_what_its_dependent_reads(suite, run):
    suite(
        test_http="""
        import pytest

        @pytest.mark.pexen(provides=["httpd"])
        def test_apache(pexen_data):
            pexen_data["server"] = "apache"
            assert 0, "apache does not start"

        @pytest.mark.pexen(provides=["httpd"])
        def test_nginx(pexen_data):
            pexen_data["server"] = "nginx"

        @pytest.mark.pexen(requires=["any:httpd"])
        def test_page(pexen_inputs):
            assert pexen_inputs["httpd"] == {"server": "nginx"}
        """
    )
    run("--pexen").assert_outcomes(passed=2, failed=1)
    assert os.environ.get("PEXEN_DATA") is None


def test_a_script_providers_data_survives_a_resume(suite, run, pytester):
    pytester.makeini("[pytest]\npexen_scripts = checks\npexen_groups =\n    sh: workers=2 pool=thread\n")
    make_script(
        pytester.path / "checks" / "make_vm.sh",
        """
        #!/bin/sh
        # pexen: provides=vm group=sh
        echo '{"address": "10.0.0.7"}' > "$PEXEN_DATA"
        """,
    )
    suite(
        test_vm="""
        import pytest

        @pytest.mark.pexen(requires=["vm"])
        def test_address(pexen_inputs):
            assert pexen_inputs["vm"] == {"address": "10.0.0.7"}
        """
    )
    first = run("--pexen", "--pexen-state=state.db", "--pexen-break=*test_address")
    assert first.ret == 75, first.stdout.str()
    run("--pexen", "--pexen-state=state.db", "--pexen-resume").assert_outcomes(passed=2)


def test_a_script_writing_no_json_object_is_an_error_of_the_script(suite, run, pytester):
    pytester.makeini("[pytest]\npexen_scripts = checks\n")
    make_script(
        pytester.path / "checks" / "make_vm.sh",
        """
        #!/bin/sh
        # pexen: provides=vm
        echo 'address=10.0.0.7' > "$PEXEN_DATA"
        """,
    )
    result = run("--pexen")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*$PEXEN_DATA (*pexen-data.json) must hold a JSON object: Expecting value*"])


def test_a_local_tag_is_read_by_the_name_the_test_gave_it(suite, run, pytester):
    (pytester.path / "sub").mkdir()
    (pytester.path / "sub" / "conftest.py").write_text('pexen_defaults = {"local_tags": ["build"]}\n')
    (pytester.path / "sub" / "test_sub.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.pexen(provides=["build"])
            def test_build(pexen_data):
                pexen_data["artifact"] = "out.bin"

            @pytest.mark.pexen(requires=["build"])
            def test_use(pexen_inputs):
                assert pexen_inputs["build"] == {"artifact": "out.bin"}
                assert pexen_inputs["build@sub"] == {"artifact": "out.bin"}
            """
        )
    )
    run("--pexen").assert_outcomes(passed=2)
