#!/usr/bin/python3
"""Writes the expected chat renderings the C template interpreter is tested
against (tests/tokenizers/chat/cases/NAME.json -> NAME.out).  Run once, by
hand, as /usr/bin/python3 make_expected.py with Debian's python3-jinja2; the outputs are committed and nothing in
the build or the tests runs Python.

The environment is the one transformers' apply_chat_template builds:
trim_blocks, lstrip_blocks, the loopcontrols extension, a tojson filter
that is json.dumps(ensure_ascii=False, ...), and the globals raise_exception
and strftime_now; the variables are messages, tools, documents,
add_generation_prompt and the special tokens.  One difference: transformers
uses ImmutableSandboxedEnvironment, which forbids list.append/pop; the Kimi
K2 template (llama.cpp's copy) calls them, and llama.cpp's engine allows
them, so this uses the mutable SandboxedEnvironment."""
import json, os, sys
from datetime import datetime
import jinja2
from jinja2.sandbox import SandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(HERE, "..", "templates")
CASES = os.path.join(HERE, "cases")


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def render(template, ctx):
    env = SandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template).render(**ctx)


# The special tokens each family's tokenizer config passes to the template.
TOKENS = {
    "llama4": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot|>"},
    "kimi_moonlight_family": {"bos_token": "[BOS]", "eos_token": "[EOS]"},
    "kimi_k2_instruct_llamacpp": {"bos_token": "[BOS]", "eos_token": "[EOS]"},
    "afm7": {"bos_token": "<s>", "eos_token": "<turn_end>"},
    "baichuan_m1": {"bos_token": "<s>", "eos_token": "</s>"},
    "plamo2_translate": {"bos_token": "<|plamo:bos|>", "eos_token": "<|plamo:eos|>"},
}

U = lambda c: {"role": "user", "content": c}
A = lambda c: {"role": "assistant", "content": c}
S = lambda c: {"role": "system", "content": c}

COMMON = {
    "single": ([U("Hello!")], True),
    "multi": ([S("You are terse."), U("What is 2+2?"), A("4."), U("And 3+3?")], True),
    "no_prompt": ([U("Hi"), A("Hello. How can I help?")], False),
    "unicode": ([U("Line one\nLine two \u2713 \U0001F600 \"quoted\" 'single' {braces} <tags> \\ back")], True),
    "spaces": ([S("  Be brief.  \n"), U("  hi  \n\n")], True),
}

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                         "required": ["city"]}}}]
CALL = {"role": "assistant", "content": "",
        "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]}

SPECIFIC = {
    "kimi_k2_instruct_llamacpp": {
        "tools": ([S("sys"), U("Weather in Paris?"), CALL,
                   {"role": "tool", "content": "{\"temp\": 21}"}, A("It is 21."),
                   {"role": "assistant", "content": "again",
                    "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}}]},
                   {"role": "tool", "name": "f", "content": "ok"}, {"role": "tool", "content": "extra"}],
                  True, {"tools": TOOLS}),
        "parts": ([{"role": "user", "name": "alice", "content": [{"type": "text", "text": "Look: "},
                                                                   {"type": "image", "image": "x.png"},
                                                                   {"type": "text", "text": "ok?"}]}],
                  True),
    },
    "llama4": {
        "tools": ([U("Weather in Paris?"), CALL, {"role": "tool", "content": {"temp": 21, "unit": "C"}},
                   {"role": "ipython", "content": "plain"}, A("It is 21.")], True, {"tools": TOOLS}),
        "tools_system": ([S("  Use tools.  "), U("Weather?")], True,
                         {"tools": TOOLS, "tools_in_user_message": False}),
        "parts": ([{"role": "system", "content": [{"type": "text", "text": " sys part "}]},
                   {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe."}]}], True),
    },
    "afm7": {
        "tools": ([U("Weather?")], True, {"tools": TOOLS}),
        "assistant_last": ([U("Hi"), A("Hey")], True),
    },
    "baichuan_m1": {
        "roles": ([S("sys"), {"role": "user_system", "content": "us"}, U("q"),
                   {"role": "function", "content": "fn"}, {"role": "code", "content": "print(1)"}, A("a")], True),
    },
}

# Cases whose template raises (the C interpreter must fail the same way).
ERRORS = {
    "baichuan_m1": {"bad_role": ([{"role": "robot", "content": "x"}], True)},
    "llama4": {"no_messages": ([], True)},
}


# Templates written to pin the interpreter's rules (whitespace control,
# operators, filters, tests, methods, loops, macros); one context each.
SYNTHETIC = os.path.join(HERE, "synthetic")


def main():
    os.makedirs(CASES, exist_ok=True)
    n = 0
    for fname in sorted(os.listdir(SYNTHETIC)):
        name = fname[:-len(".jinja")]
        template = open(os.path.join(SYNTHETIC, fname)).read()
        ctx = {"messages": [U("Hello!"), A("Hi."), U("Bye")], "tools": None, "documents": None,
               "add_generation_prompt": True}
        base = os.path.join(CASES, "synthetic-%s.default" % name)
        with open(base + ".json", "w") as f:
            json.dump(ctx, f, ensure_ascii=False, indent=1)
            f.write("\n")
        with open(base + ".out", "w", newline="") as f:
            f.write(render(template, ctx))
        n += 1
    for name, toks in TOKENS.items():
        template = open(os.path.join(TEMPLATES, name + ".jinja")).read()
        cases = dict(COMMON)
        cases.update(SPECIFIC.get(name, {}))
        cases.update(ERRORS.get(name, {}))
        for case, spec in cases.items():
            msgs, agp = spec[0], spec[1]
            extra = spec[2] if len(spec) > 2 else {}
            ctx = {"messages": msgs, "tools": None, "documents": None, "add_generation_prompt": agp}
            ctx.update(toks)
            ctx.update(extra)
            base = os.path.join(CASES, "%s.%s" % (name, case))
            with open(base + ".json", "w") as f:
                json.dump(ctx, f, ensure_ascii=False, indent=1)
                f.write("\n")
            try:
                out = render(template, ctx)
                with open(base + ".out", "w", newline="") as f:
                    f.write(out)
            except (jinja2.exceptions.TemplateError, jinja2.exceptions.UndefinedError) as e:
                if case not in ERRORS.get(name, {}):
                    raise
                with open(base + ".err", "w") as f:
                    f.write(str(e) + "\n")
            n += 1
    print("wrote %d cases" % n)


if __name__ == "__main__":
    main()
