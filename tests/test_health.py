"""Liveness endpoint."""


def test_livez_answers_ok_without_the_database(client, count_queries):
    with count_queries() as statements:
        response = client.get("/livez")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert statements == []
