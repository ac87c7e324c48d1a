import pytest

from pipeline.redact import redact_text, redaction_counts


def test_phone_and_email_are_redacted():
    text = "Call my caseworker at (555) 123-4567 or write to jane.doe@example.org for the records."
    assert redact_text(text) == "Call my caseworker at [PHONE] or write to [EMAIL] for the records."
    assert redaction_counts(text)["PHONE"] == 1 and redaction_counts(text)["EMAIL"] == 1


@pytest.mark.parametrize("phone", ["(555) 123-4567", "555.123.4567", "555-123-4567", "+1 555 123 4567",
                                   "+1-555-123-4567", "1 (555) 123-4567", "555-123-4567 ext. 22"])
def test_us_phone_formats(phone):
    assert redact_text(f"Reach me on {phone} today.") == "Reach me on [PHONE] today."


@pytest.mark.parametrize(("text", "expected"), [
    ("We live at 123 Main Street, Apt 4B now.", "We live at [ADDRESS] now."),
    ("Send it to 45 N. Martin Luther King Jr Blvd please.", "Send it to [ADDRESS] please."),
    ("DOB: 03/14/1985 on the form.", "DOB: [DATE] on the form."),
    ("Her date of birth is March 3, 1985.", "Her date of birth is [DATE]."),
    ("Seen on 2021-04-05 and 4/5/21.", "Seen on [DATE] and [DATE]."),
    ("MRN 12345678 and medical record number: A1234567.", "MRN [ID] and medical record number: [ID]."),
    ("Case #2020-0045, SSN 123-45-6789.", "Case #[ID], SSN [ID]."),
    ("See https://example.org/a?b=1. Or www.dash.org.", "See [URL]. Or [URL]."),
    ("Dr. Alan Smith and Ms. O'Brien met us.", "Dr. [NAME] and Ms. [NAME] met us."),
    ("My name is Maria Lopez and my son Jamal was helped.", "My name is [NAME] and my son [NAME] was helped."),
])
def test_typed_placeholders(text, expected):
    assert redact_text(text) == expected


@pytest.mark.parametrize("text", [
    "Sharing data across 15 CHP and 10 DASH sites cut ER visits by 30% in 2019-2020; the dashboard runs 24/7.",
    "The Chicago Department of Public Health showed the product to 300 partners.",
    "Our record shows the case for sharing data is strong; 1 of 3 patients improved.",
    "None",
    "Maria told us the map changed the council's mind.",  # a bare name: not caught without NER (documented)
])
def test_text_without_personal_details_is_unchanged(text):
    assert redact_text(text) == text
    assert sum(redaction_counts(text).values()) == 0
