import copy

import pytest

SEED_PAYLOAD = {
    "campaign": {
        "name": "Q2 launch",
        "min_wait_seconds": 120,
        "max_wait_seconds": 420,
        "verify_email_mx": True,
        "bounce_rate_threshold": 8.0,
        "smtp_credentials": [
            {
                "label": "Primary",
                "smtp_host": "mail.smtp2go.com",
                "smtp_port": 587,
                "smtp_username": "sales@example.com",
                "smtp_password": "smtp-pa55-SECRET",
                "daily_limit": 200,
                "imap_host": "imap.gmail.com",
                "imap_port": 993,
                "imap_username": "sales@example.com",
                "imap_password": "imap-pa55-SECRET",
            }
        ],
        "sequence_steps": [
            {"position": 1, "subject": "Hi {{first_name}}", "body_html": "<p>...</p>", "delay_minutes": 0},
            {"position": 2, "subject": "Re: Hi", "body_html": "<p>...</p>", "delay_minutes": 4320},
        ],
    }
}


@pytest.fixture
def payload():
    """A fresh deep copy of the seed's example body (without its placeholder outreach_id)."""
    return copy.deepcopy(SEED_PAYLOAD)


@pytest.fixture
def create_campaign(api, payload):
    """POST the seed payload (optionally changed) and return the created campaign's id."""

    def _create(**changes):
        body = copy.deepcopy(payload)
        body["campaign"].update(changes)
        response = api.post("/api/campaigns", body, format="json")
        assert response.status_code == 201, response.json()
        return response.json()["id"]

    return _create
