"""devstack's fault model: parsing a fault list, seeded draws, counters, and the hooks' decisions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.clientfaults import ClientFaults, _status_change
from devstack.faults import COVER_BY, FAULTS, FaultPlan, FaultSpecError, LambdaDied, current_function, lambda_invocation


def test_parse_rates_all_and_overrides():
    plan = FaultPlan.parse(" dup_s3=0.05, THROTTLE=0.1 ")
    assert plan.rates == {"dup_s3": 0.05, "throttle": 0.1}
    every = FaultPlan.parse("all=0.2,throttle=0")
    assert set(every.rates) == set(FAULTS) - {"throttle"} and every.rate("serializable") == 0.2
    assert FaultPlan.parse("").rates == FaultPlan.parse("none").rates == {}
    assert FaultPlan.parse("dup_s3=0.05,throttle=0.1").describe() == "dup_s3=0.05,throttle=0.1"


@pytest.mark.parametrize("spec, message", [
    ("dup_s4=0.1", "unknown fault 'dup_s4'; known faults: all, dup_s3"),
    ("throttle", "fault entry 'throttle' needs a rate"),
    ("throttle=lots", "rate 'lots' is not a number"),
    ("throttle=1.5", "rate 1.5 is outside 0..1"),
    ("throttle=-0.1", "outside 0..1"),
    ("throttle=nan", "outside 0..1"),
])
def test_bad_fault_lists_name_the_problem(spec, message):
    with pytest.raises(FaultSpecError, match=message.replace(".", r"\.").replace("(", r"\(")):
        FaultPlan.parse(spec)


def test_from_env_reads_rates_and_seed_and_names_the_variable():
    plan = FaultPlan.from_env({"DEVSTACK_FAULTS": "lose_event=0.5", "DEVSTACK_FAULTS_SEED": "9"})
    assert plan.rates == {"lose_event": 0.5} and plan.seed == 9
    assert FaultPlan.from_env({}).rates == {}
    with pytest.raises(FaultSpecError, match="DEVSTACK_FAULTS: unknown fault 'nope'"):
        FaultPlan.from_env({"DEVSTACK_FAULTS": "nope=1"})
    with pytest.raises(FaultSpecError, match="DEVSTACK_FAULTS_SEED='x' is not an integer"):
        FaultPlan.from_env({"DEVSTACK_FAULTS_SEED": "x"})


def test_draws_are_seeded_counted_and_switchable():
    def draws(seed: int) -> list[bool]:
        plan = FaultPlan({"throttle": 0.3}, seed=seed)
        return [plan.should("throttle") for _ in range(200)]

    assert draws(1) == draws(1) and draws(1) != draws(2)
    plan = FaultPlan({"throttle": 0.3, "dup_s3": 1.0}, seed=1)
    hits = sum(plan.should("throttle") for _ in range(1000))
    assert 200 < hits < 400
    assert plan.injected() == {"dup_s3": 0, "throttle": hits}
    assert not plan.should("serializable")  # no rate: never, and not listed
    plan.enabled = False
    assert not plan.should("dup_s3") and not plan.active
    plan.enabled = True
    assert plan.should("dup_s3") and plan.injected()["dup_s3"] == 1
    with pytest.raises(KeyError, match="unknown fault 'typo'"):
        plan.should("typo")


def test_lambda_invocations_are_per_thread_and_nest():
    assert current_function() is None
    with lambda_invocation("worker"):
        assert current_function() == "worker"
        with lambda_invocation("completion"):
            assert current_function() == "completion"
        assert current_function() == "worker"
    assert current_function() is None
    assert not issubclass(LambdaDied, Exception)  # the app's `except Exception` must not catch a death


def _update(status: str, expected: str) -> bytes:
    """The body the ledger's save_job sends (see chalicelib/adapters/ledger.py)."""
    return json.dumps({"ExpressionAttributeNames": {"#a0": "id", "#a1": "status", "#st": "status"},
                       "ExpressionAttributeValues": {":v0": {"S": "j1"}, ":v1": {"S": status},
                                                     ":expected": {"S": expected}}}).encode()


def test_status_change_reads_save_job_updates_only():
    assert _status_change(_update("SUBMITTED", "QUEUED")) == ("QUEUED", "SUBMITTED")
    mark_files = json.dumps({"ExpressionAttributeNames": {"#s": "status"},
                             "ExpressionAttributeValues": {":s": {"S": "LOADED"}, ":j": {"S": "j1"}}})
    assert _status_change(mark_files) is None
    assert _status_change(b"not json") is None


class _Response:
    def __init__(self, status: int) -> None:
        self.status_code = status


def test_deaths_hit_only_their_lambda_and_only_after_a_successful_call():
    faults = ClientFaults(FaultPlan({"die_after_submit": 1.0, "die_after_record": 1.0, "die_completion": 1.0}))
    faults._after_submit(_Response(200), {"Id": "s1"})  # not inside a Lambda: the tests' own calls never die
    with lambda_invocation("worker"):
        faults._after_submit(_Response(400), {})  # the submit failed: nothing was submitted
        with pytest.raises(LambdaDied, match="after submitting statement s1"):
            faults._after_submit(_Response(200), {"Id": "s1"})
        context: dict[str, Any] = {}
        faults._remember_params({"body": _update("SUBMITTED", "QUEUED")}, context)
        with pytest.raises(LambdaDied, match="after recording"):
            faults._after_ledger_update(_Response(200), context)
        faults._remember_params({"body": _update("SUCCEEDED", "SUBMITTED")}, context)
        faults._after_ledger_update(_Response(200), context)  # finishing a job is the completion's death
    with lambda_invocation("completion"):
        faults._remember_params({"body": _update("FAILED", "RUNNING")}, context)
        with pytest.raises(LambdaDied, match="marking a job FAILED"):
            faults._after_ledger_update(_Response(200), context)
    assert faults.plan.injected() == {"die_after_submit": 1, "die_after_record": 1, "die_completion": 1}


class _Request:
    def __init__(self, operation: str, body: dict[str, Any]) -> None:
        self.headers = {"X-Amz-Target": f"DynamoDB_20120810.{operation}"}
        self.body = json.dumps(body).encode()
        self.url = "http://moto"


def test_ddb_conflicts_answer_transactions_and_conditional_writes_only():
    faults = ClientFaults(FaultPlan({"ddb_conflict": 1.0}))
    answer = faults._conflict(_Request("TransactWriteItems", {"TransactItems": [{}, {}]}))
    body = json.loads(answer.content)
    assert answer.status_code == 400 and body["__type"].endswith("#TransactionCanceledException")
    assert [r["Code"] for r in body["CancellationReasons"]] == ["None", "TransactionConflict"]
    answer = faults._conflict(_Request("UpdateItem", {"ConditionExpression": "#st = :expected"}))
    assert json.loads(answer.content)["__type"].endswith("#TransactionConflictException")
    assert faults._conflict(_Request("UpdateItem", {"UpdateExpression": "SET a = :a"})) is None  # unconditional
    assert faults._conflict(_Request("GetItem", {})) is None


def test_injecting_sets_rates_for_a_while_and_checks_them():
    plan = FaultPlan({"throttle": 0.1})
    with plan.injecting(serializable=1.0, throttle=0.0):
        assert plan.should("serializable") and not plan.should("throttle")
    assert plan.rates == {"throttle": 0.1}
    with pytest.raises(FaultSpecError, match="outside 0..1"):
        with plan.injecting(throttle=2.0):
            pass


def test_cover_makes_every_kind_fire_within_its_first_few_chances():
    # A kind with few chances (a Lambda dying after submit: one per job, and batching makes few
    # jobs) must still fire in a short run: 1/rate chances (20 at 5%) were not always reached.
    plan = FaultPlan({"throttle": 0.25, "dup_s3": 0.01}, seed=4, cover=True)
    assert any(plan.should("throttle") for _ in range(COVER_BY))
    assert any(plan.should("dup_s3") for _ in range(COVER_BY))
    unlucky = FaultPlan({"dup_s3": 1e-9}, cover=False)
    assert not any(unlucky.should("dup_s3") for _ in range(1000))
