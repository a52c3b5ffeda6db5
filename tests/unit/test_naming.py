import pytest

from qruntime.domain.naming import (
    check_program_name,
    module_to_program_name,
    program_name_to_module,
)


@pytest.mark.parametrize(
    "name", ["a", "hello-world", "circuit-runner", "vqe2", "a1-b2-c3", "a" * 63]
)
def test_valid_names_have_no_problems(name):
    assert check_program_name(name) == []


def test_underscore_message_names_the_rule_and_the_fix():
    (problem,) = check_program_name("hello_world")
    assert problem.location == "metadata.name"
    assert "must contain only lowercase letters, digits and single hyphens" in problem.message
    assert "underscores are not allowed" in problem.message
    assert "hello_world.py" in problem.message
    assert "the program hello-world" in problem.message


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "must not be empty"),
        ("Hello", "uppercase is not allowed"),
        ("hello world", "found ' '"),
        ("1abc", "must start with a lowercase letter"),
        ("-abc", "must start with a lowercase letter"),
        ("a--b", "must not contain consecutive hyphens"),
        ("abc-", "must not end with a hyphen"),
        ("a" * 64, "at most 63 characters"),
        ("héllo", "must contain only lowercase letters"),
    ],
)
def test_each_rule_is_reported(name, fragment):
    messages = [p.message for p in check_program_name(name)]
    assert any(fragment in m for m in messages), messages


def test_non_string_name():
    (problem,) = check_program_name(42)
    assert "must be a string" in problem.message


def test_several_breaks_are_all_reported():
    messages = [p.message for p in check_program_name("_" + "x" * 70 + "-")]
    assert len(messages) == 4
    assert any("at most 63" in m for m in messages)
    assert any("underscores are not allowed" in m for m in messages)
    assert any("must start with a lowercase letter" in m for m in messages)
    assert any("must not end with a hyphen" in m for m in messages)


def test_location_can_be_chosen():
    (problem,) = check_program_name("Bad", location="program")
    assert problem.location == "program"


def test_module_conversion_round_trips():
    assert program_name_to_module("hello-world") == "hello_world"
    assert module_to_program_name("hello_world") == "hello-world"
    assert module_to_program_name(program_name_to_module("a-b-c")) == "a-b-c"
