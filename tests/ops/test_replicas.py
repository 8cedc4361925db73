"""Two `azaguard serve` processes sharing a real Redis, or sharing one real PostgreSQL database for everything
(session_store: database), behind a load balancer the test plays (requests sent round-robin): a launch begun on
one completes on the other, the page loads from either, a CDS JWT replayed across them is refused. Their logs
(JSON, DEBUG) are then searched for every secret the run handled. SIGTERM drains a request in flight and exits
0."""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.routing import Mount

from azaguard.config import AppConfig
from azaguard.ops.sessions import cipher, decode
from azaguard.ops.store import DatabaseStore, RedisStore, SharedStore, kv, open_store
from azaguard.sandbox.ehr import create_ehr_app
from azaguard.sandbox.patients import SyntheticPatient, build_patients, transaction_bundle
from azaguard.sandbox.server import SandboxServer
from azaguard.smart.session import Session
from tests.ops.conftest import fresh_database
from tests.ops.services import free_port, wait_for_port
from tests.sandbox_ehr.helpers import V2

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)
CDS_ISS = "https://ehr.test/cds"
SESSION_KEY = Fernet.generate_key().decode()  # sessions are encrypted in Redis


def opened(payload: bytes) -> Session:
    fernet = cipher([SESSION_KEY])
    assert fernet is not None
    return decode(fernet.decrypt(payload))


class ThreadServer:
    """The sandbox EHR (authorization server and FHIR proxy) on a real port, in this process."""

    def __init__(self, app: Any, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        wait_for_port(self.server.config.port)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Replica:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    replicas: list[Replica]
    ehr: Any  # EhrContext
    key: ECKey
    store: SharedStore  # what the replicas share, read by the test as they see it
    database: str
    public: str
    patient_id: str


def start_replica(config: Path, port: int, log: Path) -> Replica:
    env = {**os.environ, "AZAGUARD_LOG_LEVEL": "DEBUG", "AZAGUARD_LOG_PATIENT_IDS": "none",
           "T_SESSION_KEY": SESSION_KEY}
    proc = subprocess.Popen(
        [sys.executable, "-m", "azaguard.cli", "serve", "--config", str(config), "--host", "127.0.0.1",
         "--port", str(port), "--log-format", "json"],
        stdout=subprocess.DEVNULL, stderr=log.open("wb"), env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return Replica(port, proc, log)
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"serve did not start: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module", params=["redis", "database"])
def cluster(
    request: pytest.FixtureRequest, fhir_server: SandboxServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Two replicas sharing Redis (sessions, replay cache, rate limits) and SQLite (feedback, audit), or
    sharing one PostgreSQL database for all of it (session_store: database)."""
    work = tmp_path_factory.mktemp("replicas")
    if request.param == "redis":
        session_store, database = request.getfixturevalue("redis_url"), f"sqlite:///{work / 'azaguard.sqlite'}"
    else:
        session_store, database = "database", fresh_database(request.getfixturevalue("postgres_url"))
    patients = build_patients(NOW)
    # A patient with alerts still to write, of this run alone: the FHIR server is shared by the whole session,
    # and another test may already have written the sandbox patients' alerts.
    template = "aza-febrile-c" if request.param == "redis" else "aza-febrile-f"
    patient, own = own_copy(patients, template)
    httpx.post(fhir_server.base_url, json=transaction_bundle([*patients, own]), timeout=120,
               headers={"Content-Type": "application/fhir+json"}).raise_for_status()
    ports = [free_port(), free_port()]
    ehr_port = free_port()
    public = f"http://127.0.0.1:{ports[0]}"  # the load balancer's address: every URL names it
    key = ECKey.generate_key("P-384", parameters={"kid": "cds-1"})
    data = {
        "client_id": "azaguard", "client_type": "public",
        "redirect_uris": [f"{public}/app/callback"], "launch_uri": f"{public}/app/launch",
        "scopes": {"v2": V2, "v1": "launch patient/*.read"},
        "allowed_iss": [f"http://127.0.0.1:{ehr_port}/ehr/fhir"],
        "cds_clients": [{"iss": CDS_ISS, "jwks": {"keys": [key.as_dict(private=False)]},
                         "fhir_servers": ["http://127.0.0.1"]}],
        "cds_database_url": database,
        "session_store": session_store,
        "session_key_env": "T_SESSION_KEY",
    }
    config_path = work / "azaguard.json"
    config_path.write_text(json.dumps(data))
    ehr_app = create_ehr_app(fhir_upstream=fhir_server.base_url, public_base=f"http://127.0.0.1:{ehr_port}",
                             app_config=AppConfig.model_validate(data))
    with ThreadServer(Starlette(routes=[Mount("/ehr", app=ehr_app)]), ehr_port):
        replicas = [start_replica(config_path, port, work / f"replica-{i}.log") for i, port in enumerate(ports)]
        try:
            yield Cluster(replicas, ehr_app.state.ehr, key, open_store(session_store, database), database, public,
                          patient)
        finally:
            for r in replicas:
                if r.proc.poll() is None:
                    r.proc.kill()
                    r.proc.wait(timeout=10)


def own_copy(patients: list[SyntheticPatient], template: str) -> tuple[str, SyntheticPatient]:
    """A copy of a sandbox patient under ids no other test uses (every id and reference renamed)."""
    source = next(p for p in patients if p.id == template)
    patient = f"{template}-{uuid.uuid4().hex[:8]}"
    renamed = json.loads(json.dumps(source.resources).replace(template, patient))
    return patient, replace(source, id=patient, resources=renamed)


def on(replica: Replica, url: str) -> str:
    """The URL (which names the load balancer) sent to one replica."""
    parts = urlsplit(url)
    return f"{replica.base}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def cds_jwt(cluster: Cluster, path: str = "/cds-services") -> str:
    now = int(time.time())
    claims = {"iss": CDS_ISS, "aud": cluster.public + path, "exp": now + 60, "iat": now, "jti": uuid.uuid4().hex}
    return jwt.encode({"alg": "ES384", "kid": "cds-1", "typ": "JWT"}, claims, cluster.key, algorithms=["ES384"])


def stored_sessions(cluster: Cluster) -> list[bytes]:
    if isinstance(cluster.store, RedisStore):
        return [v for k in cluster.store.redis.scan_iter("session:*") if (v := cluster.store.get(k.decode()))]
    assert isinstance(cluster.store, DatabaseStore)
    with cluster.store.engine.connect() as conn:
        return [bytes(v) for (v,) in conn.execute(select(kv.c.value).where(kv.c.key.startswith("session:")))]


def launch(cluster: Cluster, begin: Replica, finish: Replica, secrets: list[str]) -> tuple[httpx.Client, str]:
    browser = httpx.Client(follow_redirects=False, timeout=60)  # one cookie jar: 127.0.0.1 on any port
    launch_url = cluster.ehr.launch_url(cluster.patient_id)
    started = browser.get(on(begin, launch_url))
    assert started.status_code == 302, started.text
    for payload in stored_sessions(cluster):  # the launch in flight, as every replica sees it
        if payload:
            secrets += [p.code_verifier for p in opened(payload).pending.values()]
    authorized = browser.get(started.headers["location"])
    assert authorized.status_code == 302, authorized.text
    callback = authorized.headers["location"]
    query = parse_qs(urlsplit(callback).query)
    secrets += [query["code"][0], query["state"][0]]
    done = browser.get(on(finish, callback))  # the other replica completes it
    assert done.status_code == 303, done.text
    return browser, done.headers["location"]


def test_launch_across_replicas_page_from_either_and_replay_refused(cluster: Cluster) -> None:
    first, second = cluster.replicas
    secrets: list[str] = []
    browser, page = launch(cluster, first, second, secrets)
    for replica in (first, second, first):
        response = browser.get(on(replica, cluster.public + page))
        assert response.status_code == 200, response.text[:500]
        assert 'data-rule="blood-counts"' in response.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    ctx = re.search(r'name="ctx" value="([^"]+)"', response.text)
    assert csrf and ctx
    written = browser.post(f"{second.base}/app/alerts", data={"csrf_token": csrf.group(1), "ctx": ctx.group(1)})
    assert written.status_code == 303, written.text[:300]
    token = cds_jwt(cluster)
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{first.base}/cds-services", headers=headers).status_code == 200
    replayed = httpx.get(f"{second.base}/cds-services", headers=headers)
    assert replayed.status_code == 401 and "replayed" in replayed.json()["message"]
    secrets.append(token)
    # The tokens the EHR issued, as the replicas keep them (in Redis).
    for payload in stored_sessions(cluster):
        for ctx in opened(payload).launches.values() if payload else []:
            assert payload is not None and ctx.tokens.access_token.encode() not in payload  # never in clear
            secrets += [t for t in (ctx.tokens.access_token, ctx.tokens.refresh_token, ctx.tokens.id_token) if t]
    assert len(secrets) >= 6
    # Every line of both replicas' logs, at DEBUG, is searched for each secret.
    routes = [{line.get("route") for line in map(json.loads, r.log.read_text().splitlines())}
              for r in cluster.replicas]
    assert "/app/launch" in routes[0] and "/app/callback" in routes[1] and "/app/" in routes[0] & routes[1]
    for replica in cluster.replicas:
        text = replica.log.read_text()
        leaked = [s for s in secrets if s in text]
        assert leaked == [], f"secrets in {replica.log.name}"
        assert "Authorization" not in text and "BEGIN PRIVATE KEY" not in text
        assert cluster.patient_id not in text  # log_patient_ids: none


class SlowFhir(http.server.BaseHTTPRequestHandler):
    """A FHIR server that answers after a while (with an error): a CDS call is in flight meanwhile."""

    reached = threading.Event()  # set once azaguard's request is here: the hook is in flight

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        SlowFhir.reached.set()
        time.sleep(1.5)
        body = b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}'
        self.send_response(500)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args: Any) -> None:
        pass


def test_a_callback_without_the_cookie_finds_its_launch_on_the_other_replica(cluster: Cluster) -> None:
    """A framed launch whose callback arrives at the top level brings no cookie: the state, bound in the shared
    store, still completes it on whichever replica receives it."""
    first, second = cluster.replicas
    browser = httpx.Client(follow_redirects=False, timeout=60)
    started = browser.get(on(first, cluster.ehr.launch_url(cluster.patient_id)))
    assert started.status_code == 302, started.text
    authorized = browser.get(started.headers["location"])
    assert authorized.status_code == 302, authorized.text
    browser.cookies.clear()
    done = browser.get(on(second, authorized.headers["location"]))
    assert done.status_code == 303 and "ctx=" in done.headers["location"], done.text
    assert "azaguard_session" in browser.cookies  # the session it completed into (the page is not viewed here:
    # the audit test counts page views)


def test_sigterm_drains_the_request_in_flight_and_exits_0(cluster: Cluster) -> None:
    replica = cluster.replicas[1]
    SlowFhir.reached.clear()
    slow = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowFhir)
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    path = "/cds-services/azaguard-patient-view"
    body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "fhirServer": f"http://127.0.0.1:{slow.server_address[1]}",
            "fhirAuthorization": {"access_token": "cds-access-secret-42", "token_type": "Bearer",
                                  "scope": "patient/*.read", "subject": "azaguard", "expires_in": 300},
            "context": {"patientId": cluster.patient_id, "userId": "Practitioner/dr-1"}}
    result: dict[str, Any] = {}

    def call() -> None:
        try:
            result["response"] = httpx.post(f"{replica.base}{path}", json=body, timeout=30,
                                            headers={"Authorization": f"Bearer {cds_jwt(cluster, path)}"})
        except httpx.HTTPError as exc:
            result["error"] = exc

    caller = threading.Thread(target=call)
    caller.start()
    # SIGTERM only once the call is waiting on the slow FHIR server (a fixed sleep raced a loaded machine).
    assert SlowFhir.reached.wait(timeout=30), result.get("error")
    replica.proc.send_signal(signal.SIGTERM)
    caller.join(timeout=30)
    slow.shutdown()
    assert "error" not in result, result.get("error")
    assert result["response"].status_code in (200, 412, 502)
    assert replica.proc.wait(timeout=30) == 0
    text = replica.log.read_text()
    assert "cds-access-secret-42" not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(line["event"] == "FHIR server error" and line["status"] == 500 and line["level"] == "WARNING"
               for line in lines)
    assert any(line.get("action") is None for line in lines)  # (the audit trail is in the database, not the log)


def test_audit_trail_of_the_run(cluster: Cluster, tmp_path: Path) -> None:
    """Who looked at which patient, from both replicas, read back with `azaguard audit`."""
    database = cluster.database
    run = subprocess.run([sys.executable, "-m", "azaguard.cli", "audit", "--since", NOW.date().isoformat(),
                          "--database", database, "--patient", cluster.patient_id, "--format", "json"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    records = json.loads(run.stdout)
    views = [r for r in records if r["action"] == "app.view"]
    assert len(views) == 3 and {r["outcome"] for r in views} == {"evaluated"}
    assert all(r["who"].endswith("Practitioner/" + r["who"].rsplit("/", 1)[-1]) for r in views)
    assert views[0]["source"] == "127.0.0.1" and views[0]["patient"] == cluster.patient_id
    assert any(r["action"] == "app.write-alerts" and r["outcome"] == "evaluated" for r in records)
    writes = [r for r in records if r["action"] == "alert.write"]
    assert writes and all(r["who"] == views[0]["who"] for r in writes)
    hooks = [r for r in records if r["action"] == "cds.azaguard-patient-view"]
    assert hooks and hooks[0]["who"] == CDS_ISS and hooks[0]["user"] == "Practitioner/dr-1"
    table = subprocess.run([sys.executable, "-m", "azaguard.cli", "audit", "--since", NOW.date().isoformat(),
                            "--database", database, "--format", "csv"], capture_output=True, text=True, timeout=60)
    assert table.stdout.startswith("at,who,user,patient,action,outcome,source,detail,request_id\n")
