"""Fuzzing the untrusted inputs.  Configs: every golden config with one to three fields replaced
by odd values (zero, negative, huge, fractional, strings, null, lists,
objects).  lmcc plan and lmcc emit must either succeed or fail with exit
status 2 and exactly one line on stderr; no crash, no internal error.
When emit succeeds, the generated C must compile (tcc, as lmcc run does).
Deterministic: a fixed seed.  Prints PASS/FAIL lines for tests/run.sh."""
import copy, json, os, random, subprocess, sys

random.seed(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
ODD = [0, -1, 1, 2, 3, 7, 1 << 20, 1 << 40, 2.5, -0.5, "x", None, [], {}, True,
       [1, 2], [0], 1e308]
tmp = "tests/tmp/fuzz"
os.makedirs(tmp, exist_ok=True)


def paths(o, pre=()):
    if isinstance(o, dict):
        for k, v in o.items():
            yield pre + (k,)
            yield from paths(v, pre + (k,))


def mutate(base, fields):
    c = copy.deepcopy(base)
    for _ in range(random.randint(1, 3)):
        path = random.choice(fields)
        o = c
        for k in path[:-1]:
            o = o.get(k) if isinstance(o, dict) else None
        if isinstance(o, dict):
            o[path[-1]] = random.choice(ODD)
    return c


bad, runs, compiled = [], 0, 0
for case in sorted(os.listdir("tests/golden")):
    cfg = f"tests/golden/{case}/config.json"
    if not os.path.exists(cfg):
        continue
    base = json.load(open(cfg))
    fields = list(paths(base))
    for _ in range(25):
        c = mutate(base, fields)
        d = f"{tmp}/m"
        os.makedirs(d, exist_ok=True)
        json.dump(c, open(f"{d}/config.json", "w"))
        for cmd in (["./lmcc", "plan", d], ["./lmcc", "emit", d, "-o", f"{tmp}/out"]):
            r = subprocess.run(cmd, capture_output=True, timeout=120)
            runs += 1
            one_line = r.stderr.count(b"\n") == 1
            if r.returncode not in (0, 2) or (r.returncode == 2 and not one_line):
                bad.append(f"{case} {cmd[1]} exit {r.returncode}: "
                           f"{r.stderr[:160]!r} config {json.dumps(c)[:200]}")
            elif r.returncode == 0 and cmd[1] == "emit":
                t = subprocess.run(["tcc", "-c", "-Iruntime", f"{tmp}/out/model.c",
                                    "-o", f"{tmp}/out/m.o"], capture_output=True)
                if t.returncode:
                    bad.append(f"{case} emitted C does not compile: {t.stderr[:200]!r}")
                else:
                    compiled += 1
if bad:
    for b in bad[:10]:
        print("FAIL fuzz", b)
else:
    print(f"PASS fuzz: {runs} runs of plan/emit on mutated configs exit 0 or 2 "
          f"with one line; {compiled} emitted files compile")

# Checkpoints: the afm7 case's file with header bytes overwritten, or cut
# short, through a built binary: exit 0 or 2 with one line, never a crash.
src = open("tests/golden/afm7/model.safetensors", "rb").read()
hlen = int.from_bytes(src[:8], "little")
subprocess.run(["./lmcc", "build", "tests/golden/afm7", "-o", f"{tmp}/bin"],
               capture_output=True)
d = f"{tmp}/ck"
os.makedirs(d, exist_ok=True)
with open("tests/golden/afm7/config.json", "rb") as f:
    open(f"{d}/config.json", "wb").write(f.read())
bad, runs = [], 0
for i in range(150):
    b = bytearray(src)
    if i % 3 == 2:
        b = b[:random.randint(0, len(b) - 1)]
    else:
        for _ in range(random.randint(1, 4)):
            b[random.randint(0, 8 + hlen - 1)] = random.choice(b'0123456789,:[]{}"Fx\xff ')
    open(f"{d}/model.safetensors", "wb").write(bytes(b))
    r = subprocess.run([f"{tmp}/bin/afm7", "--weights", d, "--tokens", "1,2,3"],
                       capture_output=True, timeout=60)
    runs += 1
    if r.returncode not in (0, 2) or (r.returncode == 2 and r.stderr.count(b"\n") != 1):
        bad.append(f"exit {r.returncode}: {r.stderr[:200]!r}")
if bad:
    for x in bad[:10]:
        print("FAIL fuzz checkpoint", x)
else:
    print(f"PASS fuzz: {runs} damaged checkpoints end with exit 0 or 2 and one line")
