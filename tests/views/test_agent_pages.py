from tests import factories


def test_overview_names_the_active_experiment(client, auth, app, world):
    auth.login("editor@acme.test")
    assert "No experiment is running" in client.get(f"/agents/{world.agent_id}").get_data(as_text=True)
    with app.app_context():
        factories.experiment(world.agent_id, status="running", name="Live persona test")
    html = client.get(f"/agents/{world.agent_id}").get_data(as_text=True)
    assert "Live persona test" in html and "No experiment is running" not in html
