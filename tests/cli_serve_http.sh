#!/usr/bin/env bash
# CLI-level test of `slidesparse serve` (binary as $1), driven with curl (and
# with the Python openai client when it is installed) on the CPU:
#   - on the tiny Qwen2 of tests/data/engine (ChatML markers): /health,
#     /v1/models; greedy completions and chat equal `generate --prompt`
#     (`--chat`), a stop string equals `generate --stop`, a seeded sample
#     equals `generate --seed`; usage counts; 8 requests in parallel (mixed
#     streamed and not, through at most 4 sequences a step) each give the
#     same text, the streams framed as SSE chunks ending with [DONE]; every
#     bad request gets its 4xx status and an OpenAI error object;
#   - on a synthesized tiny BitNet (2048 positions, a long generation): a
#     client leaving mid-stream cancels its request and frees its KV blocks,
#     the server stays healthy; SIGINT with a stream in flight ends the stream
#     with an error event and [DONE] and the server exits 0.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/support/cli_common.sh"
export CUDA_VISIBLE_DEVICES=""
cli_begin cli_serve_http "$1"
servers=()
stop_servers() {
  local p
  for p in "${servers[@]}"; do kill -KILL "$p" 2>/dev/null; done
  cli_end
}
trap stop_servers EXIT
cd "$T"
# Without libmicrohttpd, curl or jq (a machine that did not run scripts/deps.sh, which installs
# them) this test is skipped, saying why; a build that missed an installed libmicrohttpd fails.
if "$B" serve --model x 2>&1 | grep -q "built without libmicrohttpd"; then
  if dpkg-query -W -f='${Status}' libmicrohttpd-dev 2>/dev/null | grep -q "install ok installed"; then
    echo "FAIL: libmicrohttpd-dev is installed but slidesparse was built without it (reconfigure the build)"
    exit 1
  fi
  echo "skipped: slidesparse was built without libmicrohttpd (scripts/deps.sh installs libmicrohttpd-dev)"
  exit 77
fi
for tool in curl jq; do
  command -v $tool >/dev/null || { echo "skipped: $tool is not installed (scripts/deps.sh installs it)"; exit 77; }
done

# start_server NAME ARGS...: serve on a free port; sets URL and PID (logs in NAME.out / NAME.err).
start_server() {
  local name=$1; shift
  "$B" serve --port 0 "$@" >"$name.out" 2>"$name.err" &
  PID=$!
  servers+=("$PID")
  local i port=""
  for ((i = 0; i < 600; i++)); do
    port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$name.out")
    [[ -n $port ]] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n $port ]] || { fail "$name: the server did not start: $(cat "$name.err")"; exit 1; }
  URL=http://127.0.0.1:$port
  echo "ok: $name listening on $URL"
}

# post PATH JSON -> the body in resp, the status in code
post() { code=$(curl -s -o resp -w '%{http_code}' -H 'Content-Type: application/json' -d "$2" "$URL$1"); }

D=$SS_TEST_DATA/engine
Q=$D/qwen2

# --- bad command lines: exit 2 (1 for a checkpoint without a tokenizer), one line on stderr, no server
serve_err() { # DESC NEEDLE ARGS...
  local desc=$1 needle=$2; shift 2
  timeout 20 "$B" serve "$@" >bad.out 2>bad.err; local rc=$?
  [[ $rc == 1 || $rc == 2 ]] || { fail "$desc: exit $rc"; return; }
  [[ $(wc -l <bad.err) == 1 ]] && grep -qF -- "$needle" bad.err || fail "$desc: stderr: $(cat bad.err)"
  ! grep -q "listening on" bad.out || fail "$desc: a server started"
  echo "ok: $desc ($(cat bad.err))"
}
serve_err "no --model" "give --model DIR"
serve_err "bad --port" "--port '70000'" --model "$Q" --port 70000
serve_err "bad --kv-dtype" "--kv-dtype 'fp4'" --model "$Q" --kv-dtype fp4
mkdir -p notok && cp "$Q/config.json" notok/
serve_err "no tokenizer.json" "has no tokenizer.json" --model notok
P1="Hello world, the model"
P2="Sparse weights slide"
start_server qwen2 --model "$Q" --max-num-seqs 4 --max-num-batched-tokens 64
QURL=$URL QPID=$PID

# --- health, models ---------------------------------------------------------------------------------
h=$(curl -s "$URL/health")
[[ $(jq -r .status <<<"$h") == ok && $(jq .kv_free_blocks <<<"$h") == $(jq .kv_total_blocks <<<"$h") ]] &&
  echo "ok: /health $h" || fail "/health: $h"
[[ $(curl -s "$URL/v1/models" | jq -r '.object + " " + .data[0].id + " " + (.data[0].max_model_len|tostring)') == "list qwen2 128" ]] &&
  echo "ok: /v1/models" || fail "/v1/models: $(curl -s "$URL/v1/models")"
[[ $(curl -s "$URL/v1/models/qwen2" | jq -r .id) == qwen2 ]] || fail "/v1/models/qwen2"

# --- the same text as generate ------------------------------------------------------------------------
want1=$("$B" generate --model "$Q" --prompt "$P1" --max-tokens 12 2>/dev/null)
want2=$("$B" generate --model "$Q" --prompt "$P2" --max-tokens 12 2>/dev/null)
wantc=$("$B" generate --model "$Q" --prompt "$P1" --chat --max-tokens 12 2>/dev/null)
n_prompt=$("$B" tokenize --model "$Q" --text "$P1" --add-special | tr ',' '\n' | wc -l)
# completion JSON for prompt $1 (jq-quoted), extra fields $2
req() { jq -nc --arg p "$1" "{model: \"qwen2\", prompt: \$p, max_tokens: 12, temperature: 0${2:-}}"; }
creq() { jq -nc --arg p "$1" "{model: \"qwen2\", messages: [{role: \"user\", content: \$p}], max_tokens: 12, temperature: 0${2:-}}"; }

post /v1/completions "$(req "$P1")"
got=$(jq -r '.choices[0].text' resp)
[[ $code == 200 && "$got" == "$want1" ]] && echo "ok: greedy completion = generate ($(printf %q "$got"))" ||
  fail "completion ($code): '$got' != generate '$want1': $(cat resp)"
[[ $(jq -r '[.object, .model, (.id|startswith("cmpl-")), (.created > 0)] | map(tostring) | join(" ")' resp) == "text_completion qwen2 true true" ]] ||
  fail "completion envelope: $(cat resp)"
u=$(jq -c '.usage' resp)
fr=$(jq -r '.choices[0].finish_reason' resp)
nc=$(jq .usage.completion_tokens resp)
# finish "length" after 12 tokens, or "stop" at EOS before
if [[ ($fr == length && $nc == 12) || ($fr == stop && $nc -le 12) ]] &&
  [[ $(jq .usage.prompt_tokens resp) == "$n_prompt" && $(jq .usage.total_tokens resp) == $((n_prompt + nc)) ]]; then
  echo "ok: usage $u, finish_reason $fr"
else fail "usage $u / finish_reason $fr (prompt $n_prompt tokens)"; fi

post /v1/chat/completions "$(creq "$P1")"
got=$(jq -r '.choices[0].message.content' resp)
[[ $code == 200 && "$got" == "$wantc" && $(jq -r '.object + " " + .choices[0].message.role' resp) == "chat.completion assistant" ]] &&
  echo "ok: greedy chat = generate --chat ($(printf %q "$got"))" || fail "chat ($code): '$got' != '$wantc': $(cat resp)"

# a stop string: the text before it, finish_reason stop (as generate --stop)
stop=""
for c in $(printf '%s' "$want1" | LC_ALL=C grep -o '[a-z=]' | sort -u); do
  prefix=${want1%%"$c"*}
  [[ -n $prefix && $prefix != "$want1" ]] && { stop=$c; break; }
done
if [[ -z $stop ]]; then
  fail "no ASCII character past the start of the greedy text to stop at: $(printf %q "$want1")"
else
  wants=$("$B" generate --model "$Q" --prompt "$P1" --max-tokens 12 --stop "never-there" --stop "$stop" 2>/dev/null)
  post /v1/completions "$(req "$P1" ", stop: [\"never-there\", \"$stop\"]")"
  [[ $(jq -r '.choices[0].text' resp) == "$wants" && $(jq -r '.choices[0].finish_reason' resp) == stop ]] &&
    echo "ok: stop '$stop' leaves $(printf %q "$wants"), finish_reason stop" || fail "stop '$stop': $(cat resp), want '$wants'"
fi
# seeded sampling: generate's sampler, the same seed
wantr=$("$B" generate --model "$Q" --prompt "$P1" --max-tokens 12 --temperature 0.9 --top-k 50 --top-p 0.95 --seed 7 2>/dev/null)
post /v1/completions "$(req "$P1" ", temperature: 0.9, top_k: 50, top_p: 0.95, seed: 7")"
[[ $(jq -r '.choices[0].text' resp) == "$wantr" ]] && echo "ok: seed 7 = generate --seed 7" ||
  fail "seed 7: $(cat resp), want '$wantr'"

# --- 8 in parallel, streamed and not ----------------------------------------------------------------------
# check_sse FILE OBJECT: "data: JSON" events split by blank lines, one finish_reason, [DONE] last; the text in FILE.text
check_sse() {
  local f=$1 obj=$2 field
  [[ $obj == chat.completion.chunk ]] && field='.choices[0].delta.content // ""' || field='.choices[0].text'
  if grep -v '^$' "$f" | grep -qv '^data: '; then fail "$f: a line that is not 'data: ...': $(grep -v '^$' "$f" | grep -v '^data: ' | head -1)"; return 1; fi
  if awk 'NR % 2 == 0 && $0 != "" { bad = 1 } END { exit !bad }' "$f"; then fail "$f: events not separated by one blank line"; return 1; fi
  [[ $(tail -2 "$f" | head -1) == "data: [DONE]" && $(grep -c '^data: \[DONE\]$' "$f") == 1 ]] || { fail "$f: [DONE] is not the last event: $(tail -3 "$f")"; return 1; }
  local js; js=$(grep '^data: {' "$f" | sed 's/^data: //')
  [[ $(jq -r .object <<<"$js" | sort -u) == "$obj" ]] || { fail "$f: object $(jq -r .object <<<"$js" | sort -u | paste -sd,)"; return 1; }
  [[ $(jq -r .id <<<"$js" | sort -u | wc -l) == 1 ]] || { fail "$f: more than one id"; return 1; }
  [[ $(jq -r '.choices[0].finish_reason // empty' <<<"$js" | wc -l) == 1 ]] || { fail "$f: not exactly one finish_reason"; return 1; }
  jq -j "$field" <<<"$js" >"$f.text"
}
pids=()
for i in 0 1 2 3 4 5 6 7; do
  if ((i % 2)); then p=$P2; else p=$P1; fi
  if ((i % 4 < 2)); then
    curl -s -o "par$i" -H 'Content-Type: application/json' -d "$(req "$p")" "$URL/v1/completions" &
  else
    curl -sN -o "par$i" -H 'Content-Type: application/json' -d "$(req "$p" ", stream: true")" "$URL/v1/completions" &
  fi
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "parallel curl exit $?"; done
okpar=0
for i in 0 1 2 3 4 5 6 7; do
  if ((i % 2)); then want=$want2; else want=$want1; fi
  if ((i % 4 < 2)); then got=$(jq -r '.choices[0].text' "par$i"); else check_sse "par$i" text_completion || continue; got=$(cat "par$i.text"); fi
  [[ "$got" == "$want" ]] && okpar=$((okpar + 1)) || fail "parallel request $i: '$got' != '$want'"
done
[[ $okpar == 8 ]] && echo "ok: 8 parallel requests (4 streamed), each = generate"
# chat streamed, with the usage chunk
curl -sN -o chat.sse -d "$(creq "$P1" ", stream: true, stream_options: {include_usage: true}")" "$URL/v1/chat/completions"
if check_sse chat.sse chat.completion.chunk; then
  [[ $(cat chat.sse.text) == "$wantc" ]] && echo "ok: streamed chat = generate --chat" || fail "streamed chat: '$(cat chat.sse.text)' != '$wantc'"
  first=$(grep -m1 '^data: {' chat.sse | sed 's/^data: //')
  [[ $(jq -r '.choices[0].delta.role' <<<"$first") == assistant ]] || fail "streamed chat: the first delta has no role: $first"
  last=$(grep '^data: {' chat.sse | tail -1 | sed 's/^data: //')
  [[ $(jq '.choices | length' <<<"$last") == 0 && $(jq .usage.prompt_tokens <<<"$last") -gt 0 ]] &&
    echo "ok: include_usage chunk $(jq -c .usage <<<"$last")" || fail "no usage chunk: $last"
fi
h=$(curl -s "$URL/health")
[[ $(jq .running <<<"$h") == 0 && $(jq .kv_free_blocks <<<"$h") == $(jq .kv_total_blocks <<<"$h") ]] &&
  echo "ok: every KV block back after the requests: $h" || fail "after the requests: $h"

# --- bad requests: status + {"error": {"message", "type"}} ------------------------------------------------
# expect_status DESC STATUS NEEDLE CURL-ARGS...
expect_status() {
  local desc=$1 want=$2 needle=$3; shift 3
  code=$(curl -s -o resp -w '%{http_code}' "$@")
  if [[ $code != "$want" ]]; then fail "$desc: status $code, expected $want: $(head -c 300 resp)"; return; fi
  if ! jq -e '(.error.message|type) == "string" and (.error.type|type) == "string"' resp >/dev/null 2>&1; then
    fail "$desc: not an OpenAI error object: $(head -c 300 resp)"; return
  fi
  jq -r .error.message resp | grep -qF -- "$needle" || { fail "$desc: message lacks '$needle': $(cat resp)"; return; }
  echo "ok: $desc -> $code $(jq -r .error.message resp)"
}
C=(-H 'Content-Type: application/json')
expect_status "malformed JSON" 400 "not valid JSON" "${C[@]}" -d '{"model": "qwen2", "prompt": ' "$URL/v1/completions"
expect_status "not an object" 400 "JSON object" "${C[@]}" -d '["qwen2"]' "$URL/v1/completions"
expect_status "missing prompt" 400 "'prompt' is required" "${C[@]}" -d '{"model": "qwen2"}' "$URL/v1/completions"
expect_status "missing model" 400 "'model' is required" "${C[@]}" -d '{"prompt": "x"}' "$URL/v1/completions"
expect_status "missing messages" 400 "'messages' is required" "${C[@]}" -d '{"model": "qwen2"}' "$URL/v1/chat/completions"
expect_status "max_tokens a string" 400 "'max_tokens' must be an integer" "${C[@]}" -d '{"model": "qwen2", "prompt": "x", "max_tokens": "5"}' "$URL/v1/completions"
expect_status "temperature a string" 400 "'temperature' must be a number" "${C[@]}" -d '{"model": "qwen2", "prompt": "x", "temperature": "hot"}' "$URL/v1/completions"
expect_status "stream not a bool" 400 "'stream'" "${C[@]}" -d '{"model": "qwen2", "prompt": "x", "stream": "yes"}' "$URL/v1/completions"
expect_status "a message without content" 400 "messages[0]" "${C[@]}" -d '{"model": "qwen2", "messages": [{"role": "user"}]}' "$URL/v1/chat/completions"
expect_status "max_tokens beyond the context" 400 "exceed the model's context of 128" "${C[@]}" -d '{"model": "qwen2", "prompt": "x", "max_tokens": 500}' "$URL/v1/completions"
expect_status "unknown model" 404 "the model 'gpt-4' does not exist" "${C[@]}" -d '{"model": "gpt-4", "prompt": "x"}' "$URL/v1/completions"
expect_status "unknown model path" 404 "does not exist" "$URL/v1/models/gpt-4"
expect_status "unknown route" 404 "no route GET /v1/nothing" "$URL/v1/nothing"
expect_status "GET a POST route" 405 "use POST" "$URL/v1/completions"
expect_status "POST a GET route" 405 "use GET" -X POST -d '{}' "$URL/v1/models"
head -c $((5 << 20)) /dev/zero | tr '\0' ' ' >big.json
expect_status "a 5 MB body" 413 "larger than" "${C[@]}" --data-binary @big.json "$URL/v1/completions"
curl -sI -X GET "$URL/v1/completions" | grep -qi '^allow: POST' || fail "405 without an Allow header"
[[ $(curl -s "$URL/health" | jq -r .status) == ok ]] && echo "ok: healthy after the bad requests" || fail "unhealthy after the bad requests"

# --- the Python openai client ----------------------------------------------------------------------------
if command -v python3 >/dev/null && python3 -c "import openai" 2>/dev/null; then
  cat >client.py <<'PY'
import sys, openai
url, want1, wantc = sys.argv[1], sys.argv[2], sys.argv[3]
c = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
assert [m.id for m in c.models.list()] == ["qwen2"]
r = c.completions.create(model="qwen2", prompt="Hello world, the model", max_tokens=12, temperature=0)
assert r.choices[0].text == want1, (r.choices[0].text, want1)
assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
r = c.chat.completions.create(model="qwen2", messages=[{"role": "user", "content": "Hello world, the model"}],
                              max_tokens=12, temperature=0)
assert r.choices[0].message.content == wantc, (r.choices[0].message.content, wantc)
s = c.chat.completions.create(model="qwen2", messages=[{"role": "user", "content": "Hello world, the model"}],
                              max_tokens=12, temperature=0, stream=True)
text = "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices)
assert text == wantc, (text, wantc)
s = c.completions.create(model="qwen2", prompt="Hello world, the model", max_tokens=12, temperature=0, stream=True)
assert "".join(ch.choices[0].text for ch in s) == want1
try:
    c.completions.create(model="nope", prompt="x", max_tokens=2)
    raise SystemExit("no error for an unknown model")
except openai.NotFoundError:
    pass
try:
    c.completions.create(model="qwen2", prompt="x", max_tokens=1000)
    raise SystemExit("no error beyond the context")
except openai.BadRequestError:
    pass
print("openai", openai.__version__)
PY
  if python3 client.py "$URL" "$want1" "$wantc" >py.out 2>&1; then echo "ok: the openai client ($(cat py.out))"
  else fail "the openai client: $(tail -5 py.out)"; fi
else
  echo "skipped: the Python openai package is not installed (pip install openai): the openai client part"
fi

kill -TERM "$QPID"
wait "$QPID"; rc=$?
[[ $rc == 0 ]] && grep -q "stopped (SIGTERM)" qwen2.err && echo "ok: SIGTERM: exit 0, $(tail -1 qwen2.err)" ||
  fail "SIGTERM: exit $rc: $(tail -2 qwen2.err)"

# --- a client leaving mid-stream; SIGINT with a stream in flight -------------------------------------------
run_ok "$B" synth --preset tiny-bitnet --out tb --seed 5 || exit 1
cp "$D/bitnet/tokenizer.json" tb/
start_server tb --model tb
long='{"model": "tb", "prompt": "Hello", "max_tokens": 2000, "ignore_eos": true, "temperature": 0, "stream": true}'
curl -sN -d "$long" "$URL/v1/completions" | head -n 1 >first
grep -q '^data: {' first || fail "disconnect: no first event: $(cat first)"
for ((i = 0; i < 100; i++)); do
  h=$(curl -s "$URL/health")
  [[ $(jq .running <<<"$h") == 0 && $(jq .requests_cancelled <<<"$h") == 1 ]] && break
  sleep 0.1
done
[[ $(jq .running <<<"$h") == 0 && $(jq .requests_cancelled <<<"$h") == 1 && $(jq .kv_free_blocks <<<"$h") == $(jq .kv_total_blocks <<<"$h") ]] &&
  echo "ok: the client left mid-stream: cancelled, every KV block back: $h" || fail "after the disconnect: $h"
grep -q "stream cancelled: the client disconnected" tb.err || fail "no cancel line in the log: $(cat tb.err)"
post /v1/completions '{"model": "tb", "prompt": "Hello", "max_tokens": 3, "temperature": 0}'
[[ $code == 200 && $(jq .usage.completion_tokens resp) -ge 1 ]] && echo "ok: served after the disconnect" || fail "after the disconnect: $code $(cat resp)"
# continuous batching: a short request joins the long one's batch and ends while it runs
curl -sN -d "$long" "$URL/v1/completions" >inflight &
cpid=$!
for ((i = 0; i < 100; i++)); do [[ -s inflight ]] && break; sleep 0.1; done
post /v1/completions '{"model": "tb", "prompt": "Hi there", "max_tokens": 4, "ignore_eos": true, "temperature": 0}'
h=$(curl -s "$URL/health")
[[ $code == 200 && $(jq .usage.completion_tokens resp) == 4 && $(jq .running <<<"$h") == 1 && $(jq .peak_running <<<"$h") == 2 ]] &&
  echo "ok: a short request batched with a long stream and done while it runs: $h" || fail "batching: $code $(cat resp) $h"
kill -INT "$PID"
wait "$PID"; rc=$?
wait "$cpid"
[[ $rc == 0 ]] && grep -q "stopped (SIGINT)" tb.err && echo "ok: SIGINT: exit 0" || fail "SIGINT: exit $rc: $(tail -2 tb.err)"
[[ $(tail -2 inflight | head -1) == "data: [DONE]" ]] && grep -q "shutting down" inflight &&
  echo "ok: the stream in flight ended with an error event and [DONE]" || fail "stream in flight at SIGINT: $(tail -c 300 inflight)"

if [[ $fails != 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "cli_serve_http: all passed"
