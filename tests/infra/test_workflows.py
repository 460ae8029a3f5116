"""The GitHub Actions workflows: `make test` on every change, dev from main, prod from a tag.

The deploy jobs get AWS credentials only from GitHub's OIDC token (no stored keys), prod waits
for the `prod` environment's reviewers, and every action is pinned to a commit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sluice.config import PROJECT_ROOT

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
DEPLOY = WORKFLOWS / "deploy.yml"
VENV_BIN = Path(sys.executable).parent

CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1"
SETUP_PYTHON = "actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97"
AWS_CREDENTIALS = "aws-actions/configure-aws-credentials@e6de054238d6b7531b4efff3b6587d9aade6a06c"

READ_ONLY = {"contents": "read"}
OIDC = {"id-token": "write", "contents": "read"}


def _load(path: Path) -> dict[str, Any]:
    """The workflow as a dict, with `on` under "on" (YAML 1.1 reads the bare key as True)."""
    workflow: dict[str, Any] = yaml.safe_load(path.read_text())
    assert "on" not in workflow
    workflow["on"] = workflow.pop(True)
    return workflow


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = job["steps"]
    return steps


def _test_job(setup_python: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "make test",
        "runs-on": "ubuntu-latest",
        "timeout-minutes": 60,
        "steps": [
            {"uses": CHECKOUT, "with": {"persist-credentials": False}},
            {"uses": SETUP_PYTHON, "with": setup_python},
            {"run": "make test"},
        ],
    }


def _deploy_job(env: str, condition: str) -> dict[str, Any]:
    return {
        "name": f"deploy Sluice-{env}",
        "needs": "test",
        "if": condition,
        "runs-on": "ubuntu-latest",
        "timeout-minutes": 60,
        "environment": env,
        "concurrency": {"group": f"deploy-{env}", "cancel-in-progress": False},
        "permissions": OIDC,
        "steps": [
            {"uses": CHECKOUT, "with": {"persist-credentials": False}},
            {"uses": SETUP_PYTHON, "with": {"python-version": "3.11"}},
            {
                "uses": AWS_CREDENTIALS,
                "with": {
                    "role-to-assume": "${{ vars.AWS_DEPLOY_ROLE_ARN }}",
                    "aws-region": "${{ vars.AWS_REGION }}",
                    "role-session-name": f"sluice-deploy-{env}",
                },
            },
            {"run": "make synth"},
            {
                "name": "cdk deploy",
                "run": 'export PATH="$PWD/.venv/bin:$PATH"\n'
                f"npx --yes aws-cdk@2 deploy Sluice-{env} -c env={env} --require-approval never\n",
            },
        ],
    }


def test_ci_runs_make_test_on_every_push_and_pull_request() -> None:
    # Given the CI workflow
    # When it is loaded
    ci = _load(CI)

    # Then every push and every pull request run `make test` on Python 3.11 with read-only
    # permissions, and a newer run for the same ref cancels the one in progress
    assert ci["on"] == {"push": None, "pull_request": None}
    assert ci["permissions"] == READ_ONLY
    assert ci["concurrency"] == {"group": "ci-${{ github.ref }}", "cancel-in-progress": True}
    assert ci["jobs"] == {
        "test": _test_job(
            {
                "python-version": "3.11",
                "cache": "pip",
                "cache-dependency-path": "pyproject.toml\nrequirements/lambda.txt\n",
            }
        )
    }


def test_deploy_runs_for_pushes_to_main_and_release_tags_only() -> None:
    # Given the deploy workflow
    # When it is loaded
    deploy = _load(DEPLOY)

    # Then only a push to main or of a v* tag starts it, one run per ref at a time
    assert deploy["on"] == {"push": {"branches": ["main"], "tags": ["v*"]}}
    assert deploy["concurrency"] == {
        "group": "deploy-${{ github.ref }}",
        "cancel-in-progress": False,
    }
    assert list(deploy["jobs"]) == ["test", "deploy-dev", "deploy-prod"]


def test_deploy_tests_first_without_a_cache_a_deploy_could_restore() -> None:
    # Given the deploy workflow's test job
    job = _load(DEPLOY)["jobs"]["test"]

    # Then it is CI's `make test`, without the pip cache (restored caches are untrusted input
    # to a job that precedes a deploy)
    assert job == _test_job({"python-version": "3.11"})


def test_dev_deploys_from_main_after_the_tests_pass() -> None:
    # Given the deploy workflow
    # When its dev job is read
    job = _load(DEPLOY)["jobs"]["deploy-dev"]

    # Then it needs the test job, runs for main only, in the dev environment, and deploys
    # Sluice-dev with the role assumed through OIDC
    assert job == _deploy_job("dev", "github.ref == 'refs/heads/main'")


def test_prod_deploys_from_a_release_tag_behind_the_prod_environment() -> None:
    # Given the deploy workflow
    # When its prod job is read
    job = _load(DEPLOY)["jobs"]["deploy-prod"]

    # Then it needs the test job, runs for v* tags only, and waits in the prod environment
    # (whose required reviewers are the manual approval) before deploying Sluice-prod
    assert job == _deploy_job("prod", "startsWith(github.ref, 'refs/tags/v')")


def test_only_the_deploy_jobs_may_request_an_oidc_token() -> None:
    # Given both workflows
    workflows = {"ci": _load(CI), "deploy": _load(DEPLOY)}

    # When the permissions of every workflow and job are collected
    top_level = {name: workflow["permissions"] for name, workflow in workflows.items()}
    per_job = {
        (name, job_id): job.get("permissions")
        for name, workflow in workflows.items()
        for job_id, job in workflow["jobs"].items()
    }

    # Then the workflows grant read-only contents, the test jobs inherit that, and the two
    # deploy jobs alone add id-token: write
    assert top_level == {"ci": READ_ONLY, "deploy": READ_ONLY}
    assert per_job == {
        ("ci", "test"): None,
        ("deploy", "test"): None,
        ("deploy", "deploy-dev"): OIDC,
        ("deploy", "deploy-prod"): OIDC,
    }


ACCESS_KEY_INPUTS = {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"}
# The inputs above and AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, anywhere,
# and any secret at all.
STORED_CREDENTIAL = re.compile(
    r"aws[-_](secret[-_])?access[-_]key|aws[-_]session[-_]token|secrets\.", re.I
)


@pytest.mark.parametrize("path", [CI, DEPLOY], ids=["ci", "deploy"])
def test_no_step_is_given_stored_credentials(path: Path) -> None:
    # Given a workflow
    workflow = _load(path)

    # When the inputs and environments of every step and job are collected
    steps = [step for job in workflow["jobs"].values() for step in _steps(job)]
    inputs = {key for step in steps for key in step.get("with", {})}
    env_keys = {
        key
        for holder in [workflow, *workflow["jobs"].values(), *steps]
        for key in holder.get("env", {})
    }

    # Then no step takes an access key, no environment holds one, and no secret is read at all
    assert inputs & ACCESS_KEY_INPUTS == set()
    assert env_keys == set()
    assert STORED_CREDENTIAL.findall(path.read_text()) == []


PINS = {
    CHECKOUT: "v7.0.1",
    SETUP_PYTHON: "v7.0.0",
    AWS_CREDENTIALS: "v6.2.3",
}


@pytest.mark.parametrize(
    ("path", "actions"),
    [(CI, {CHECKOUT, SETUP_PYTHON}), (DEPLOY, {CHECKOUT, SETUP_PYTHON, AWS_CREDENTIALS})],
    ids=["ci", "deploy"],
)
def test_every_action_is_pinned_to_a_commit_with_its_version(path: Path, actions: set[str]) -> None:
    # Given a workflow
    workflow = _load(path)

    # When its steps' actions and its `uses:` lines are collected
    uses = [
        step["uses"] for job in workflow["jobs"].values() for step in _steps(job) if "uses" in step
    ]
    lines = [
        line.strip().removeprefix("- ") for line in path.read_text().splitlines() if "uses:" in line
    ]

    # Then each is one of the known actions at a full commit SHA, and its line names the release
    # that commit is
    assert set(uses) == actions
    assert all(re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", action) for action in uses)
    assert lines == [f"uses: {action} # {PINS[action]}" for action in uses]


def _tool(name: str, *args: str) -> tuple[int, str, str]:
    result = subprocess.run(
        [str(VENV_BIN / name), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    return result.returncode, result.stdout, result.stderr


def test_zizmor_finds_nothing_even_pedantic() -> None:
    # Given both workflows
    # When zizmor audits them offline with every audit at its strictest persona
    returncode, stdout, stderr = _tool(
        "zizmor", "--offline", "--persona", "pedantic", str(WORKFLOWS)
    )

    # Then it audited both and found nothing: no template injection, excessive permission,
    # unpinned action, persisted checkout credential or cache a release could restore
    audited = re.findall(r"completed (\S+)$", stderr, re.M)
    assert sorted(audited) == [str(CI), str(DEPLOY)]
    assert (returncode, stdout) == (0, "No findings to report. Good job!\n")


def test_the_workflows_match_githubs_workflow_schema() -> None:
    # Given both workflows
    # When they are validated against the GitHub workflow schema check-jsonschema ships
    result = _tool(
        "check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(CI), str(DEPLOY)
    )

    # Then no key is misspelt or misplaced
    assert result == (0, "ok -- validation done\n", "")
