"""The sandbox EHR's patient chart: CDS cards above the launch button, and an order form.

Opening the chart fires patient-view. Adding an order makes a draft and fires order-select for it;
"Sign" fires order-sign for every draft. Accepting a suggestion applies it (a delete removes the
draft) and overriding asks for a reason; both send feedback. Signing is refused while a critical
card about a draft is neither accepted nor overridden.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from azaguard.fhirtypes.reference import ref_of
from azaguard.sandbox.ehr.cdsclient import CdsError, Chart, SandboxCdsClient
from azaguard.sandbox.ehr.context import EhrContext, ehr
from azaguard.sandbox.ehr.launcher import display_name

CVX = "http://hl7.org/fhir/sid/cvx"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
# The order catalogue: product key -> (label, coding). Simulator data, as a real EHR's catalogue is.
PRODUCTS: dict[str, tuple[str, dict[str, str]]] = {
    "mmr": ("MMR vaccine (measles, mumps, rubella)", {"system": CVX, "code": "03", "display": "MMR"}),
    "varicella": ("Varicella vaccine", {"system": CVX, "code": "21", "display": "varicella"}),
    "zoster-recombinant": ("Zoster vaccine, recombinant (Shingrix)",
                           {"system": CVX, "code": "187", "display": "zoster recombinant"}),
    "yellow-fever": ("Yellow fever vaccine", {"system": CVX, "code": "37", "display": "yellow fever"}),
    "influenza-inactivated": ("Influenza vaccine, inactivated, injectable",
                              {"system": CVX, "code": "150", "display": "influenza, injectable, quadrivalent"}),
    "laiv": ("Influenza vaccine, live, intranasal (LAIV)",
             {"system": CVX, "code": "149", "display": "influenza, live, intranasal, quadrivalent"}),
    "pcv20": ("Pneumococcal conjugate vaccine (PCV20)", {"system": CVX, "code": "216", "display": "PCV20"}),
    "azathioprine": ("Azathioprine 50 mg tablet",
                     {"system": RXNORM, "code": "197388", "display": "azathioprine 50 MG Oral Tablet"}),
}
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _cds(context: EhrContext) -> SandboxCdsClient:
    client = context.cds
    if client is None:
        raise RuntimeError("the sandbox EHR was created without a CDS service")
    return client


def _patient_id(request: Request) -> str | None:
    pid = str(request.path_params["patient_id"])
    return pid if _ID.fullmatch(pid) else None


async def chart_page(request: Request) -> Response:
    context = ehr(request)
    pid = _patient_id(request)
    if pid is None:
        return context.page("error.html", status_code=400, error="Unknown patient", description="not a patient id")
    cds = _cds(context)
    chart = cds.chart(pid)
    try:
        patient = await context.upstream.get_json(f"Patient/{pid}")
    except (httpx.HTTPError, ValueError):
        return context.page("error.html", status_code=404, error="Unknown patient",
                            description=f"Patient/{pid} could not be read from the FHIR server")
    if request.query_params.get("open") or not chart.opened:
        # Opening the chart reads the record afresh and fires patient-view; after an order action
        # (POST, then redirect here) the chart is shown as it is.
        chart.prefetch, chart.opened, chart.drafts, chart.order_cards = None, True, [], []
        try:
            chart.view_cards = await cds.call("patient-view", chart)
            chart.problem = None
        except CdsError as exc:
            chart.view_cards, chart.problem = [], str(exc)
    response = _render(context, chart, patient)
    chart.message = None  # shown once
    return response


async def _reload(context: EhrContext, chart: Chart) -> Response:
    """Post/redirect/get: back to the chart, so a reload never repeats an order action."""
    return RedirectResponse(f"{context.ehr_base}/patient/{chart.patient_id}#orders", status_code=303)


def _render(context: EhrContext, chart: Chart, patient: dict[str, Any]) -> Response:
    blocking = _blocking(chart)
    return context.page(
        "chart.html", chart=chart, name=display_name(patient), patient=patient, products=PRODUCTS,
        launch_url=context.launch_url(chart.patient_id), app_name=context.client.client_id,
        drafts=[(d["id"], _label(d)) for d in chart.drafts], render=render_markdown, blocking=blocking,
        smart_url=context.launch_url(chart.patient_id),
    )


def _label(draft: dict[str, Any]) -> str:
    text = str((draft.get("medicationCodeableConcept") or {}).get("text") or "order")
    dose = (draft.get("dosageInstruction") or [{}])[0].get("text")
    return f"{text} — {dose}" if dose else text


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(v) for k, v in form.items() if isinstance(v, str)}


async def add_order(request: Request) -> Response:
    context = ehr(request)
    pid = _patient_id(request)
    form = await _form(request)
    product = PRODUCTS.get(form.get("product", ""))
    if pid is None or product is None:
        return context.page("error.html", status_code=400, error="Bad order", description="choose a product")
    chart = _cds(context).chart(pid)
    draft = _draft(pid, form.get("product", ""), product, form)
    chart.drafts.append(draft)
    chart.message = f"Draft order: {_label(draft)}"
    try:
        chart.order_cards = await _cds(context).call("order-select", chart,
                                                     selections=[f"MedicationRequest/{draft['id']}"])
        chart.problem = None
    except CdsError as exc:
        chart.problem = str(exc)
    return await _reload(context, chart)


def _draft(pid: str, key: str, product: tuple[str, dict[str, str]], form: dict[str, str]) -> dict[str, Any]:
    label, coding = product
    draft: dict[str, Any] = {
        "resourceType": "MedicationRequest", "id": f"draft-{uuid.uuid4().hex[:12]}", "status": "draft",
        "intent": "order", "subject": {"reference": f"Patient/{pid}"},
        "medicationCodeableConcept": {"coding": [coding], "text": label},
    }
    if key == "azathioprine":
        try:
            mg = float(form.get("dose_mg") or "50")
            per_day = int(form.get("per_day") or "1")
        except ValueError:
            mg, per_day = 50.0, 1
        draft["dosageInstruction"] = [{
            "text": f"{mg:g} mg {per_day}× a day",
            "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg", "system": UCUM, "code": "mg"}}],
        }]
    return draft


def _blocking(chart: Chart) -> list[dict[str, Any]]:
    """Critical cards about a draft that is still there and was not overridden."""
    drafts = {f"MedicationRequest/{d['id']}" for d in chart.drafts}
    out = []
    for card in chart.order_cards:
        if card.get("indicator") != "critical":
            continue
        targets = {a.get("resourceId") for s in card.get("suggestions", []) for a in s.get("actions", [])}
        if not targets or (targets & drafts) - chart.overridden_drafts:
            out.append(card)
    return out


async def sign(request: Request) -> Response:
    context = ehr(request)
    pid = _patient_id(request)
    if pid is None:
        return RedirectResponse(f"{context.ehr_base}/", status_code=303)
    chart = _cds(context).chart(pid)
    if not chart.drafts:
        chart.message = "Nothing to sign."
        return await _reload(context, chart)
    try:
        chart.order_cards = await _cds(context).call("order-sign", chart)
        chart.problem = None
    except CdsError as exc:
        chart.problem = str(exc)
        return await _reload(context, chart)
    if _blocking(chart):
        chart.message = "Not signed: accept or override the critical alerts first."
    else:
        chart.message = (f"{len(chart.drafts)} order(s) signed (sandbox: not written to the FHIR server).")
        chart.drafts, chart.overridden_drafts = [], set()
        chart.order_cards = [c for c in chart.order_cards if c.get("indicator") != "critical"]
    return await _reload(context, chart)


async def accept(request: Request) -> Response:
    context = ehr(request)
    pid = _patient_id(request)
    form = await _form(request)
    chart = _cds(context).chart(pid or "")
    found = chart.card(form.get("card", ""))
    if pid is None or found is None:
        chart.message = "That alert is no longer on screen."
        return RedirectResponse(f"{context.ehr_base}/patient/{pid or ''}", status_code=303)
    card, _ = found
    suggestion = next((s for s in card.get("suggestions", []) if s.get("uuid") == form.get("suggestion")), None)
    if suggestion is None:
        chart.message = "That suggestion is not on the alert."
        return await _reload(context, chart)
    for action in suggestion.get("actions", []):
        if action.get("type") == "delete":
            ref = str(action.get("resourceId", ""))
            chart.drafts = [d for d in chart.drafts if ref_of(d) != ref]
    chart.drop_card(card["uuid"])
    chart.message = f"Accepted: {suggestion.get('label')}"
    await _send_feedback(context, chart, card, "accepted", suggestion=str(suggestion.get("uuid")))
    return await _reload(context, chart)


async def override(request: Request) -> Response:
    context = ehr(request)
    pid = _patient_id(request)
    form = await _form(request)
    chart = _cds(context).chart(pid or "")
    found = chart.card(form.get("card", ""))
    if pid is None or found is None:
        return RedirectResponse(f"{context.ehr_base}/patient/{pid or ''}", status_code=303)
    card, _ = found
    reasons = {r.get("code"): r for r in card.get("overrideReasons", [])}
    reason = reasons.get(form.get("reason"))
    comment = form.get("comment", "").strip()[:500] or None
    if reasons and reason is None:
        chart.message = "Choose a reason to override the alert."
        return await _reload(context, chart)
    for s in card.get("suggestions", []):
        for a in s.get("actions", []):
            chart.overridden_drafts.add(str(a.get("resourceId")))
    chart.drop_card(card["uuid"])
    chart.message = f"Overridden: {card.get('summary')}"
    await _send_feedback(context, chart, card, "overridden", reason=reason, comment=comment)
    return await _reload(context, chart)


async def _send_feedback(context: EhrContext, chart: Chart, card: dict[str, Any], outcome: str,
                         **kw: Any) -> None:
    try:
        await _cds(context).feedback(card, outcome, **kw)
    except CdsError as exc:
        chart.problem = f"feedback not sent: {exc}"


def render_markdown(text: str) -> Markup:
    """The small markdown a card detail uses (paragraphs, '- ' lists, **bold**, _italic_, `code`),
    with everything else escaped."""
    out: list[str] = []
    in_list = False
    for line in text.split("\n"):
        item = line.startswith("- ")
        if in_list and not item:
            out.append("</ul>")
            in_list = False
        if item and not in_list:
            out.append("<ul>")
            in_list = True
        html = str(escape(line[2:] if item else line))
        html = re.sub(r"\\([\\`*_\[\]&lt;&gt;#|])", r"\1", html)
        html = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html)
        html = re.sub(r"`(.+?)`", r"<code>\1</code>", html)
        html = re.sub(r"(?<!\w)_(.+?)_(?!\w)", r"<em>\1</em>", html)
        if item:
            out.append(f"<li>{html}</li>")
        elif html:
            out.append(f"<p>{html}</p>")
    if in_list:
        out.append("</ul>")
    return Markup("".join(out))  # noqa: S704 - built from escaped text only
