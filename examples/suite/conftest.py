"""An example system suite: build an image, test drivers and hardware, deploy
a service, run the system scripts, boot a VM, collect the logs.

What each part shows (run it with ``pytest --pexen -v examples/suite``):

- ``images/``: Python tests that provide tags (``compiler``, ``image``,
  ``docs``) and a conftest default (priority) for the whole directory.
- ``drivers/``: a default inherited down the tree (``requires=["image"]``),
  and two subtrees that both say ``build -> load`` without clashing: each
  conftest makes ``build`` a local tag (``build@drivers/net``, ...).
- ``hw/``: a conftest that generates a test per disk listed in
  ``hw/disks.txt`` (``pytest_pexen_generate``), and one command; and adds a
  test per network link that a discovery test finds, while the run goes on
  (``pytest_pexen_task_finished``).
- ``deploy/``: dependencies, a shared and an exclusive lock on one
  resource, a test that passes with a warning, skip and xfail as in pytest;
  a value handed from a provider to its dependents (``pexen_data``,
  ``pexen_inputs``); a tag that either of two tests provides (``any:``).
- ``sys/``: shell scripts run by a thread pool, with ``# pexen:`` headers;
  exit 77 skips, 78 warns; a chain blocked because the machine has no TPM.
- ``vm/``: an exclusivity group of its own, one worker.
- ``test_cleanup.py``: runs after the tests of its group that provide what
  it names, whatever their outcome (local tags named from outside).
"""

# Every test in the suite gets a time limit; a conftest nearer a test, or
# its marker or script header, may say otherwise.
pexen_defaults = {"timeout": 60}
