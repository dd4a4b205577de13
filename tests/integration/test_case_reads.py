"""Reads scoped by construction: one presenter, and selectors that take who is asking."""

from __future__ import annotations

from typing import Any

import pytest

from rights import selectors
from rights.models import TakedownRequest
from rights.presenters import Viewer, ViewerKind, case_present
from rights.states import CaseState
from tests.factories import ContentItemFactory, OutletDomainFactory, OutletFactory

pytestmark = pytest.mark.django_db

STAFF_ONLY = {"channel", "trusted", "requester", "partner"}


@pytest.fixture
def two_partners(submit: Any) -> dict[str, Any]:
    cases: dict[str, Any] = {}
    for slug in ("alpha", "beta"):
        outlet = OutletFactory.create(slug=slug, is_partner=True)
        OutletDomainFactory.create(outlet=outlet, domain=f"{slug}.example")
        item = ContentItemFactory.create(outlet=outlet, source_domain=f"www.{slug}.example")
        result = submit(
            channel="api", outlet=outlet, urls=[item.source_url], email=f"d@{slug}.example"
        )
        cases[slug] = (outlet, result.case)
    return cases


def test_a_partner_finds_its_own_case_and_not_anothers(two_partners: dict[str, Any]) -> None:
    alpha, alpha_case = two_partners["alpha"]
    _, beta_case = two_partners["beta"]
    viewer = Viewer.partner(alpha)
    assert selectors.case_for(viewer=viewer, reference=beta_case.reference) is None
    found = selectors.case_for(viewer=viewer, reference=alpha_case.reference.lower())
    assert found is not None
    assert [c.reference for c in selectors.case_summaries(viewer=viewer)] == [alpha_case.reference]
    shown = case_present(found[0], targets=found[1], viewer=viewer).as_dict()
    assert not STAFF_ONLY & shown.keys()
    assert shown["targets"][0]["content_item"] is not None
    beta = TakedownRequest.objects.get(pk=beta_case.pk)
    with pytest.raises(PermissionError):
        case_present(beta, targets=[], viewer=viewer)


def test_a_requester_sees_their_own_case_in_plain_words(submit: Any, item: Any) -> None:
    mine = submit(urls=[item.source_url], email="me@example.org").case
    theirs = submit(urls=[item.source_url], email="them@example.org").case
    viewer = Viewer.requester(mine.requester)
    assert selectors.case_for(viewer=viewer, reference=theirs.reference) is None
    found = selectors.case_for(viewer=viewer, reference=mine.reference)
    assert found is not None
    shown = case_present(found[0], targets=found[1], viewer=viewer).as_dict()
    assert shown["state"] == CaseState.IN_REVIEW
    assert shown["meaning"] == "Being reviewed by our team"
    assert shown["deadline_at"] is not None
    assert not STAFF_ONLY & shown.keys()
    assert shown["targets"][0]["content_item"] is None  # the catalogue is not the requester's
    assert shown["targets"][0]["meaning"] == "Waiting for a decision"


def test_staff_see_every_case_with_the_staff_fields(two_partners: dict[str, Any]) -> None:
    staff = Viewer.staff()
    assert selectors.case_summaries(viewer=staff).count() == 2
    _, case = two_partners["alpha"]
    found = selectors.case_for(viewer=staff, reference=case.reference)
    assert found is not None
    shown = case_present(found[0], targets=found[1], viewer=staff).as_dict()
    assert shown.keys() >= STAFF_ONLY
    assert shown["trusted"] is True


def test_a_viewer_without_its_scope_sees_nothing(two_partners: dict[str, Any]) -> None:
    for kind in (ViewerKind.PARTNER, ViewerKind.REQUESTER):
        assert not selectors.cases_visible_to(Viewer(kind)).exists()


def test_one_case_is_read_in_two_queries_whatever_its_size(
    submit: Any, outlet: Any, django_assert_num_queries: Any
) -> None:
    items = [ContentItemFactory.create(outlet=outlet) for _ in range(30)]
    case = submit(urls=[i.source_url for i in items]).case
    with django_assert_num_queries(2):
        found = selectors.case_for(viewer=Viewer.staff(), reference=case.reference)
        assert found is not None
        case_present(found[0], targets=found[1], viewer=Viewer.staff())
    assert len(found[1]) == 30
