"""Every form and HTMX POST, fed arbitrary values as the owner: a 4xx or a success, never a 500.

Bounded: a fixed number of examples per route, derandomised so a failure reproduces.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.views.test_roles import POST_ROUTES, fill, world  # noqa: F401 - the fixture extends `world`

NASTY = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["", " ", "-1", "0", "1e309", "NaN", "9" * 40, "[" * 500, '{"persona": []}', '{"a": Infinity}',
                     "\u202e", "<script>alert(1)</script>", "' OR 1=1 --", "\x00", "💥" * 70]),
)
FIELDS = ["name", "kind", "hypothesis", "persona_name", "persona_tone", "instructions", "email", "role", "mode",
          "variant", "variants-0-key", "variants-0-name", "variants-0-weight", "variants-0-config",
          "variants-0-persona_name", "variants-1-key", "variants-1-weight", "variants-1-config", "variants-9-weight"]


@pytest.mark.parametrize("path", sorted({route[0] for route in POST_ROUTES}))
def test_owner_posts_arbitrary_values_without_a_500(client, auth, world, path):  # noqa: F811
    auth.login(world.emails["owner"])
    url = fill(path, world)

    @settings(max_examples=15, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.dictionaries(st.sampled_from(FIELDS), NASTY, max_size=8), st.booleans())
    def post(data, htmx):
        headers = {"HX-Request": "true"} if htmx else {}
        response = auth.post(url, data, headers=headers)
        assert response.status_code < 500, (url, data, response.get_data(as_text=True)[:300])

    post()
