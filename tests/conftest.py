"""Fixtures shared by every test module. Fixtures only: helpers that are not fixtures live in
tests/support/ (docs/testing.md, "Where a test goes")."""

from __future__ import annotations

import pytest

from tests.support.policies import bundled_policies
from webhook.policy.model import PolicySet


@pytest.fixture(scope="session")
def bundled() -> PolicySet:
    """The bundled policies (policies/), loaded once a session."""
    return bundled_policies()
