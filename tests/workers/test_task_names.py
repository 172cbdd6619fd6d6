"""The task names of core.tasks are the ones the workers register, and each is routed explicitly."""

from __future__ import annotations

import pytest

import celeryconfig
from core import tasks

NAMES = {value for name, value in vars(tasks).items() if name.isupper() and isinstance(value, str)}


def test_every_worker_task_is_named_in_core_tasks_and_every_name_is_a_worker_task():
    from workers.celery_app import app

    registered = {name for name in app.tasks if name.startswith("workers.")}
    assert registered == NAMES


def test_every_task_is_routed_by_celeryconfig_to_a_declared_queue():
    from workers.celery_app import app

    declared = {queue.name for queue in celeryconfig.task_queues}
    unrouted = {
        name for name in NAMES if not any(name.startswith(pattern.rstrip("*")) for pattern in celeryconfig.task_routes)
    }
    assert unrouted == set()
    assert {app.amqp.router.route({}, name)["queue"].name for name in NAMES} <= declared
    assert app.amqp.router.route({}, tasks.PLACE_ORDER)["queue"].name == "orders"
    assert app.amqp.router.route({}, tasks.RECONCILE_BROKER)["queue"].name == "maintenance"


def test_a_missing_task_module_stops_the_worker_at_start_with_its_name():
    from workers.celery_app import MissingTaskModule, load_task_modules

    with pytest.raises(MissingTaskModule, match="workers.renamed_away"):
        load_task_modules(("maintenance", "renamed_away"))
