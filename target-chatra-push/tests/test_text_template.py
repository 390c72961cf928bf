"""Templates: a null fails the row unless the template says what to do; limits fail one row."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from target_chatra_push.template_limits import MAX_RENDER_SECONDS
from target_chatra_push.text_template import MessageEnvironment, compile_template, render_text
from target_chatra_push.values import InvalidRowError


def _render(source: str, row: dict[str, object]) -> str:
    return render_text(compile_template(source), row, 5000)


def _code(source: str, row: dict[str, object]) -> str:
    with pytest.raises(InvalidRowError) as invalid:
        _render(source, row)
    return invalid.value.code


@pytest.mark.parametrize(
    ("source", "row"),
    [
        ("{{ name | upper }}", {"name": None}),  # the audit: "NONE" went to a customer
        ("{{ name | title }}", {"name": None}),  # and "None"
        ("{{ name | lower | trim }}", {"name": None}),
        ("{{ name ~ '!' }}", {"name": None}),
        ("{{ 'Hi ' + name }}", {"name": None}),
        ("{{ count + 1 }}", {"count": None}),
        ("{% if count > 3 %}many{% endif %}", {"count": None}),
        ("{{ name[0] }}", {"name": None}),
        ("{{ name.upper() }}", {"name": None}),
        ("{{ name | string }}", {"name": None}),
        ("{{ address.city | upper }}", {"address": {"city": None}}),
        ("{{ tags | join(', ') }}", {"tags": ["vip", None]}),
        ("{{ tags | map('upper') | join(', ') }}", {"tags": ["vip", None]}),
        ("{{ tags }}", {"tags": ["vip", None]}),
        ("{{ row.name | upper }}", {"name": None}),
        ("{{ row.get('nickname') | upper }}", {}),
        ("{% for tag in tags %}{{ tag }}{% endfor %}", {"tags": None}),
        ("{{ '%s!' % name }}", {"name": None}),
        ("{{ '{}!'.format(name) }}", {"name": None}),
    ],
)
def test_a_null_met_in_a_filter_or_expression_fails_the_row(source, row):
    assert _code(source, row) == "template_null"


def test_the_reason_names_the_null_and_the_fix():
    with pytest.raises(InvalidRowError) as invalid:
        _render("Hi {{ address.city | upper }}", {"address": {"city": None}})
    assert invalid.value.reason == (
        "text_template: 'address.city' is null; say what to print instead, e.g. "
        "{{ name | default('there') }}"
    )


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("Hi {{ name | default('there') }}", "Hi there"),
        ("Hi {{ name | default('there') | upper }}", "Hi THERE"),
        ("Hi {{ name | d('there', true) }}", "Hi there"),
        ("{% if name is none %}Hi there{% else %}Hi {{ name }}{% endif %}", "Hi there"),
        ("{% if name is not defined %}Hi there{% endif %}", "Hi there"),
        ("{% if name %}Hi {{ name }}{% else %}Hi there{% endif %}", "Hi there"),
        ("{% if name == none %}Hi there{% endif %}", "Hi there"),
        ("Hi {{ name or 'there' }}", "Hi there"),
        ("Hi {{ name if name else 'there' }}", "Hi there"),
        ("Hi {{ (tags | select | join(', ')) or 'all' }}", "Hi vip"),
        ("{{ tags | length }} tags", "2 tags"),
    ],
)
def test_a_template_that_says_what_to_do_with_a_null_renders(source, text):
    assert _render(source, {"name": None, "tags": ["vip", None]}) == text


def test_values_that_are_not_null_render_as_before():
    row = {"name": "Ada", "n": 3, "at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC), "tags": ["a"]}
    source = "{{ name | upper }} {{ n + 1 }} {{ at.strftime('%d %b') }} {{ tags | join(',') }}"
    assert _render(source, row) == "ADA 4 02 Jan a"


def test_a_variable_the_row_lacks_fails_as_undefined():
    assert _code("Hi {{ first_name }}", {}) == "template_undefined"


# Each of these would hang the run or exhaust its memory without a limit.
HOSTILE = [
    "{% for i in range(10**9) %}x{% endfor %}",
    "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "{% for a in items %}{% for b in items %}{% endfor %}{% endfor %}",
    "{% for a in items %}{% for b in items %}{{ b }}{% endfor %}{% endfor %}",
    "{{ 'x' * 10**9 }}",
    "{{ ['x'] * 10**9 }}",
    "{{ 10 ** 1000000000 }}",
    "{% set x = 7 ** 30000 %}{{ (x * x * x) | string | length }}",
    "{{ 'x' | center(10**9) }}",
    "{{ 'x' | center(999999999) }}",
    "{{ 'x' | indent(10**9) }}",
    "{{ [1] | batch(10**9, 0) | list }}",
    "{{ '{:>999999999}'.format('x') }}",
    "{{ '{:>{w}}'.format('x', w=10**9) }}",
    "{{ '%999999999s' % 'x' }}",
    "{{ '%999999999s' | format('x') }}",
    "{{ 'x'.ljust(10**9) }}",
    "{{ ('x' * 50000) | replace('', 'yy') }}",
    "{{ ('x' * 90000).replace('x', 'yy') }}",
    "{{ ('x' * 1000).join(range(1000) | map('string')) }}",
    (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s | length }}"
    ),
    (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
        "{% endfor %}{{ ns.s | length }}"
    ),
    (
        "{% macro grow(s, n) %}{% if n %}{{ grow(s ~ s, n - 1) }}{% else %}{{ s | length }}"
        "{% endif %}{% endmacro %}{{ grow('x', 64) }}"
    ),
    "{% macro loop() %}{{ loop() }}{% endmacro %}{{ loop() }}",
    "{{ lipsum(10**6) }}",
]


@pytest.mark.parametrize("source", HOSTILE)
def test_a_hostile_template_fails_its_row_within_the_limits(source):
    started = time.process_time()
    with pytest.raises(InvalidRowError) as invalid:
        _render(source, {"items": list(range(20_000))})
    spent = time.process_time() - started

    assert invalid.value.code in {
        "template_limit",
        "text_too_long",
        "template_error",  # RecursionError
        "template_undefined",  # lipsum is gone
    }
    assert spent < MAX_RENDER_SECONDS + 1.5  # CPU time: other load on the machine does not count


def test_the_cpu_limit_ends_an_endless_loop():
    with pytest.raises(InvalidRowError) as invalid:
        _render("{% for a in items %}{% for b in items %}{% endfor %}{% endfor %}", {
            "items": list(range(20_000))
        })  # fmt: skip
    assert invalid.value.code == "template_limit"
    assert invalid.value.reason == "text_template: stopped after 1 s of CPU time on this row"


def test_a_text_past_chatras_limit_stops_rendering_at_once():
    with pytest.raises(InvalidRowError) as invalid:
        _render("{% for i in range(10000) %}{{ 'x' * 9000 }}{% endfor %}", {})
    assert invalid.value.code == "text_too_long"
    assert "more than 5000 characters" in invalid.value.reason


def test_concatenation_is_compiled_to_the_checked_join():
    # Guards the override of Jinja's CodeGenerator.visit_Concat (template_limits.py): if a
    # Jinja upgrade stops calling it, `~` escapes the size limit.
    code = MessageEnvironment().compile("{{ a ~ b }}", raw=True)
    assert "environment.checked_concat((" in code


def test_one_hostile_row_fails_alone(sandbox, kit, sent_texts):
    template = (
        "{% for a in loops %}{% for b in loops %}{% endfor %}{% endfor %}"
        "Order {{ order_id }} shipped."
    )
    messages = [json.loads(line) for line in kit.resource("orders.singer").splitlines()]
    messages[0]["schema"]["properties"]["loops"] = {"type": "array"}
    rows = [message["record"] for message in messages if message["type"] == "RECORD"]
    for n, row in enumerate(rows):
        row["loops"] = list(range(20_000)) if n == 1 else [1, 2]
    singer = "".join(json.dumps(message) + "\n" for message in messages)

    run = kit.run(kit.config(sandbox, text_template=template), singer)

    assert (run.count("sent"), run.count("invalid")) == (4, 1)
    assert len(sent_texts(sandbox)) == 4
    (letter,) = kit.dead_letters()
    assert (letter["key"], letter["code"]) == ("[101]", "template_limit")


def test_a_null_through_a_filter_is_dead_lettered_not_sent(sandbox, kit, sent_texts):
    template = "Hi {{ first_name | upper }}, order {{ order_id }} has shipped."
    run = kit.run(kit.config(sandbox, text_template=template), "orders_templated.singer")

    assert sent_texts(sandbox) == [
        "Hi ADA, order 300 has shipped.",
        "Hi DEE, order 303 has shipped.",
    ]
    assert run.count("invalid") == 2
    codes = {letter["key"]: letter["code"] for letter in kit.dead_letters()}
    assert codes == {"[301]": "template_null", "[302]": "template_undefined"}


def test_a_dry_run_applies_the_same_null_rule(kit):
    template = "Hi {{ first_name | title }}, order {{ order_id }} has shipped."
    run = kit.run(kit.config(None, dry_run=True, text_template=template), "orders_templated.singer")

    assert run.count("previewed") == 2
    previewed = {entry["key"]: entry for entry in kit.preview()}
    assert previewed["[301]"]["action"] == "invalid"
    assert previewed["[301]"]["code"] == "template_null"
    assert "'first_name' is null" in previewed["[301]"]["reason"]
