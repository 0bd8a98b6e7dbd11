"""A widget key's look, greeting and languages: validation, the admin, and the first frame."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from apps.tenants.models import WidgetKey, WidgetLanguage
from apps.tenants.selectors import widget_settings
from tests.support.chat import chat_settings, open_chat  # noqa: F401

I18N = Path(__file__).resolve().parents[3] / "frontend" / "src" / "i18n.ts"


def _form(key: WidgetKey, **changes) -> dict:
    data = {
        "tenant": key.tenant_id,
        "name": key.name,
        "is_active": "on",
        "accent_color": key.accent_color,
        "accent_text_color": key.accent_text_color,
        "launcher_position": key.launcher_position,
        "launcher_label": key.launcher_label,
        "assistant_name": key.assistant_name,
        "avatar_url": key.avatar_url,
        "greeting": key.greeting,
        "suggested_questions": key.suggested_questions,
        "languages": key.languages,
        "hidden_paths": key.hidden_paths,
    }
    data.update(changes)
    return data


def test_settings_of_a_new_key_are_the_defaults(tenant_a):
    settings = widget_settings(widget_key=tenant_a.widget_key)
    assert settings == {
        "accent_color": "#2563eb",
        "accent_text_color": "#ffffff",
        "launcher_position": "right",
        "launcher_label": "",
        "assistant_name": "",
        "avatar_url": None,
        "greeting": "",
        "suggested_questions": [],
        "languages": ["en", "de", "fr", "es"],
        "default_language": "en",
        "hidden_paths": [],
    }


def test_settings_carry_what_the_admin_saved(tenant_a):
    key = tenant_a.widget_key
    key.accent_color = "#0a7d38"
    key.launcher_position = "left"
    key.assistant_name = "Ava"
    key.greeting = "Hi! Ask me anything."
    key.suggested_questions = "Where is my order?\n\n  How do returns work?  \n"
    key.languages = ["fr", "de"]
    key.hidden_paths = "/checkout/*\n/account"
    key.save()
    tenant_a.tenant.default_language = "de"
    tenant_a.tenant.save()
    settings = widget_settings(widget_key=WidgetKey.objects.for_tenant(tenant_a.tenant).get())
    assert settings["accent_color"] == "#0a7d38"
    assert settings["launcher_position"] == "left"
    assert settings["assistant_name"] == "Ava"
    assert settings["suggested_questions"] == ["Where is my order?", "How do returns work?"]
    # Listed in the product's order; the tenant's default when it is one of them.
    assert settings["languages"] == ["de", "fr"]
    assert settings["default_language"] == "de"
    assert settings["hidden_paths"] == ["/checkout/*", "/account"]


def test_default_language_outside_the_keys_languages_falls_to_the_first(tenant_a):
    key = tenant_a.widget_key
    key.languages = ["es", "fr"]
    tenant_a.tenant.default_language = "de"
    assert widget_settings(widget_key=key)["default_language"] == "fr"


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("accent_color", "blue", "Use a colour in the form #1a73e8"),
        ("accent_text_color", "#fff", "Use a colour in the form #1a73e8"),
        ("suggested_questions", "\n".join(f"q{i}" for i in range(6)), "At most 5 questions"),
        ("suggested_questions", "x" * 151, "at most 150 characters"),
        ("hidden_paths", "checkout", "'checkout' is not a path"),
        ("languages", ["en", "it"], "Pick among en, de, fr, es"),
        ("avatar_url", "javascript:alert(1)", "Enter a valid URL"),
        ("launcher_position", "top", "is not a valid choice"),
    ],
)
def test_bad_settings_are_refused_with_a_readable_message(tenant_a, field, value, message):
    key = tenant_a.widget_key
    setattr(key, field, value)
    with pytest.raises(ValidationError) as caught:
        key.full_clean(validate_unique=False)
    assert field in caught.value.message_dict
    assert message in " ".join(caught.value.message_dict[field])


def test_the_widget_has_strings_for_every_language_the_admin_offers():
    text = I18N.read_text()
    catalogs = re.search(r"export const catalogs: Record<string, Catalog> = \{([^}]*)\}", text)
    assert catalogs, "frontend/src/i18n.ts no longer exports `catalogs`"
    assert {name.strip() for name in catalogs.group(1).split(",")} == set(WidgetLanguage.values)


def test_admin_of_the_tenant_changes_the_look(client, tenant_a):
    client.force_login(tenant_a.admin)
    key = tenant_a.widget_key
    url = reverse("admin:tenants_widgetkey_change", args=[key.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'type="color"' in page.content.decode()
    response = client.post(
        url,
        _form(key, accent_color="#0a7d38", greeting="Hallo!", languages=["de"]),
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    key.refresh_from_db()
    assert (key.accent_color, key.greeting, key.languages) == ("#0a7d38", "Hallo!", ["de"])


def test_admin_shows_what_is_wrong_and_saves_nothing(client, tenant_a):
    client.force_login(tenant_a.admin)
    key = tenant_a.widget_key
    url = reverse("admin:tenants_widgetkey_change", args=[key.pk])
    response = client.post(url, _form(key, accent_color="teal", hidden_paths="checkout"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Use a colour in the form #1a73e8" in body
    assert "is not a path" in body
    key.refresh_from_db()
    assert key.accent_color == "#2563eb"


def test_agent_cannot_change_the_look(client, tenant_a):
    client.force_login(tenant_a.agent)
    key = tenant_a.widget_key
    url = reverse("admin:tenants_widgetkey_change", args=[key.pk])
    response = client.post(url, _form(key, accent_color="#000000"))
    assert response.status_code in {302, 403}
    key.refresh_from_db()
    assert key.accent_color == "#2563eb"


def test_other_tenants_admin_cannot_change_the_look(client, tenant_a, tenant_b):
    client.force_login(tenant_b.owner)
    key = tenant_a.widget_key
    url = reverse("admin:tenants_widgetkey_change", args=[key.pk])
    response = client.post(url, _form(key, accent_color="#000000", tenant=tenant_b.tenant.pk))
    assert response.status_code == 302
    assert response.headers["Location"] == reverse("admin:index")
    key.refresh_from_db()
    assert key.accent_color == "#2563eb"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("chat_settings")
async def test_first_frame_carries_the_keys_settings_and_no_other_keys(tenant_a, tenant_b):
    from apps.core.asyncdb import db_async

    def customise() -> None:
        for world, colour in ((tenant_a, "#0a7d38"), (tenant_b, "#aa0000")):
            world.widget_key.accent_color = colour
            world.widget_key.greeting = f"Welcome to {world.tenant.name}"
            world.widget_key.save()

    await db_async(customise)()
    communicator, ready = await open_chat(tenant_a)
    assert ready["widget"]["accent_color"] == "#0a7d38"
    assert ready["widget"]["greeting"] == "Welcome to Acme Anvils"
    assert "Bluebird" not in str(ready)
    await communicator.disconnect()
