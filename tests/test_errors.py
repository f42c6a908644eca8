"""errors.one_line: what the CLI, the web app and the compare runner show for a failure."""

from genvision.errors import one_line


def test_the_first_line_of_the_message():
    assert one_line(ValueError("  bad --set lr=x; give a number\ntraceback detail\n")) == (
        "bad --set lr=x; give a number"
    )


def test_an_error_without_a_message_shows_its_type():
    assert one_line(KeyError()) == "KeyError"
    assert one_line(RuntimeError("   \n")) == "RuntimeError"
