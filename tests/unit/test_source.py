import textwrap

import pytest

from qruntime.domain import InvalidSourceError, check_program_source
from qruntime.domain.source import MainSignature, main_signature

GOOD = textwrap.dedent(
    '''
    """A runtime program."""
    import numpy as np


    def helper(x):
        return x


    def main(backend, user_messenger, **kwargs):
        user_messenger.publish({"ok": True})
        return "All done!"
    '''
)


def refusal(source, **kwargs) -> str:
    with pytest.raises(InvalidSourceError) as info:
        check_program_source(source, **kwargs)
    (problem,) = info.value.problems
    assert problem.location == "source"
    return problem.message


def test_good_source_is_returned_as_text():
    assert check_program_source(GOOD) == GOOD
    assert check_program_source(GOOD.encode()) == GOOD


def test_utf8_bom_is_dropped():
    assert check_program_source(b"\xef\xbb\xbf" + GOOD.encode()) == GOOD


@pytest.mark.parametrize(
    "signature",
    [
        "def main(backend, user_messenger)",
        "def main(backend, user_messenger, /, **kwargs)",
        "def main(backend, /, user_messenger, iterations=1)",
        "def main(*args, **kwargs)",
        "def main(backend, *args)",
    ],
)
def test_accepted_main_signatures(signature):
    check_program_source(f"{signature}:\n    pass\n")


def test_invalid_utf8_gives_byte_offset():
    message = refusal(b"x = 1\n# \xff\n")
    assert "not valid UTF-8" in message
    assert "byte offset 8" in message


def test_lone_surrogate_in_text_is_refused():
    assert "not valid UTF-8" in refusal("x = '\udc80'\n")


def test_too_large_states_size_and_limit():
    message = refusal(b"#" * 101, max_bytes=100)
    assert "101 bytes" in message
    assert "limit of 100 bytes" in message


def test_size_is_counted_in_utf8_bytes_for_text():
    assert "limit of 10 bytes" in refusal("# ééééééé\n", max_bytes=10)


def test_syntax_error_gives_line_column_and_reason():
    message = refusal(
        "def main(backend, user_messenger):\n    return (\n\nx = 1\n", filename="p.py"
    )
    assert message.startswith("p.py, line 2, column")
    assert "syntax error" in message
    assert "never closed" in message


def test_null_byte_is_refused_cleanly():
    message = refusal(b"def main(a, b):\n    x = 1\x00\n")
    assert "null byte" in message
    assert "line 2, column 10" in message


def test_warnings_during_parse_are_not_refusals():
    check_program_source('PATTERN = "\\d+"\ndef main(backend, user_messenger):\n    pass\n')


def test_no_main():
    assert "no main function found" in refusal("def run(backend, user_messenger):\n    pass\n")


def test_async_main():
    message = refusal("async def main(backend, user_messenger):\n    pass\n")
    assert "async def" in message
    assert "plain def main(backend, user_messenger, **kwargs)" in message


def test_lambda_main():
    message = refusal("main = lambda backend, user_messenger: None\n")
    assert "assigned a lambda" in message


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("main = print\n", "assigned a value"),
        ("from somewhere import main\n", "imported from another module"),
        ("import main\n", "imported from another module"),
        ("class main:\n    pass\n", "is a class"),
        ("def main(a, b):\n    pass\nmain = 3\n", "line 3"),
    ],
)
def test_other_main_bindings(source, fragment):
    message = refusal(source)
    assert fragment in message


def test_nested_main_is_not_top_level():
    source = "if True:\n    def main(backend, user_messenger):\n        pass\n"
    assert "not defined at the top level" in refusal(source)


@pytest.mark.parametrize(
    "signature",
    ["def main()", "def main(backend)", "def main(backend, *, user_messenger)", "def main(**kw)"],
)
def test_main_needs_two_positional_parameters(signature):
    message = refusal(f"{signature}:\n    pass\n")
    assert "at least two" in message
    assert "backend and user_messenger" in message


def test_last_definition_wins():
    check_program_source("main = None\ndef main(backend, user_messenger):\n    pass\n")


def test_wrong_type():
    assert "text or bytes" in refusal(123)


@pytest.mark.parametrize(
    ("source", "names", "takes_kwargs"),
    [
        ("def main(backend, user_messenger, **kwargs): ...", (), True),
        ("def main(backend, user_messenger, shots=1, *, seed): ...", ("shots", "seed"), False),
        ("def main(backend, messenger, /, x, **options): ...", ("x",), True),
        ("def main(a, /, b, c): ...", ("c",), False),
        ("def main(*args, x=1): ...", ("x",), False),
        ("def main(backend, messenger): ...\ndef main(b, m, late): ...", ("late",), False),
    ],
)
def test_main_signature_reads_the_inputs_main_takes(source, names, takes_kwargs):
    assert main_signature(source) == MainSignature(names, takes_kwargs)


def test_main_signature_is_unknown_where_the_source_does_not_say():
    assert main_signature("@wraps\ndef main(backend, user_messenger, x): ...") is None
    assert main_signature("main = make_main()") is None
    assert main_signature("def main(:") is None
