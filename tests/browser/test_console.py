"""The union office in a real browser: a worker applies, staff approve from their queue, the member shows the card;
a transfer released and accepted from two staff sessions; a sibling organisation's staff see neither queue nor
dossier. One platform and one browser for the module; each person has their own browser context (cookies)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from devstack.platform import ServiceProcess
from tests.browser.conftest import eventually, screenshot
from tests.support import auth, data

PHONE = {"width": 390, "height": 844}
DESK = {"width": 1024, "height": 768}


def org(m: httpx.Client, name: str, type_: str, parent: str | None = None, **extra: str) -> str:
    body = {"name": name, "type": type_, "region_code": "310115", "parent_id": parent, **extra}
    r = m.post("/organizations", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["org_id"])


@pytest.fixture(scope="module")
def orgs(admin: dict[str, httpx.Client]) -> dict[str, str]:
    m = admin["membership"]
    county = org(m, "浦东新区总工会", "county")
    return {
        "county": county,
        "a": org(m, "花木街道工会", "township", county),
        "b": org(m, "陆家嘴街道工会", "township", county),
        "federation": org(m, "浦东新区区域工会联合会", "federation", county, subtype="regional"),
    }


def person(browser: Browser, console: ServiceProcess, viewport: dict[str, int] = DESK) -> tuple[BrowserContext, Page]:
    context = browser.new_context(base_url=console.url, viewport=viewport, locale="zh-CN")  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    return context, context.new_page()


def sign_in(page: Page, role: str, *, org_id: str = "", member_no: str = "", name: str = "") -> None:
    page.goto("/signin")
    page.get_by_label({"staff": "工作人员", "member": "会员", "admin": "管理员"}[role], exact=True).check()
    if org_id:
        page.locator("#org_id").select_option(org_id)
    if member_no:
        page.get_by_label("会员号（会员）").fill(member_no)
    if name:
        page.get_by_label("显示姓名（可选）").fill(name)
    page.locator("form[action='/signin'] button[type=submit]").click()
    expect(page.get_by_test_id("who")).to_be_visible()


def reload_until(page: Page, url: str, text: str, timeout: float = 45) -> None:
    def shown() -> bool:
        page.goto(url)
        return page.get_by_text(text).count() > 0

    eventually(shown, f"{text!r} on {url}", timeout)


STATE: dict[str, Any] = {}


def test_a_worker_applies_staff_approve_and_the_member_sees_the_card(
    browser: Browser, console: ServiceProcess, orgs: dict[str, str], admin: dict[str, httpx.Client]
) -> None:
    worker_ctx, worker = person(browser, console, PHONE)
    worker.goto("/where-to-join?region_code=310115")
    expect(worker.get_by_test_id("where")).to_contain_text("浦东新区区域工会联合会")
    screenshot(worker, "where-to-join")
    worker.goto(f"/apply?org={orgs['a']}")
    id_number = data.identity_number()
    wrong = id_number[:-1] + ("0" if id_number[-1] != "0" else "1")
    worker.get_by_label("姓名").fill("王芳")
    worker.get_by_label("居民身份证号").fill(wrong)
    worker.get_by_label("手机号").fill(data.phone())
    worker.get_by_label("工作单位", exact=True).fill("张江高科技园区某公司")
    worker.get_by_role("button", name="提交申请").click()
    expect(worker.get_by_test_id("error-id_number")).to_be_visible()  # the check character, beside the field
    expect(worker.get_by_label("居民身份证号")).to_have_attribute("aria-invalid", "true")
    screenshot(worker, "apply-check-character")
    worker.get_by_label("居民身份证号").fill(id_number)
    worker.get_by_role("button", name="提交申请").click()
    expect(worker.get_by_test_id("message")).to_contain_text("申请编号")
    screenshot(worker, "apply-submitted")

    staff_ctx, staff = person(browser, console)
    sign_in(staff, "staff", org_id=orgs["a"], name="李干事")
    expect(staff.get_by_test_id("who")).to_contain_text("花木街道工会")
    reload_until(staff, "/staff/queue", "王*")
    screenshot(staff, "staff-queue")
    staff.get_by_role("link", name="审核").first.click()
    expect(staff.get_by_test_id("status")).to_have_text("待审核")
    screenshot(staff, "staff-review")
    staff.get_by_role("button", name="批准入会").click()
    expect(staff.get_by_test_id("message")).to_contain_text("会员号")
    member_no = re.search(r"会员号 ([0-9-]+)", staff.get_by_test_id("message").inner_text())
    assert member_no is not None
    staff.get_by_role("link", name="查看会员档案").click()
    expect(staff.get_by_test_id("dossier")).to_contain_text(member_no.group(1))
    screenshot(staff, "staff-dossier")
    STATE["member_id"] = staff.url.rsplit("/", 1)[-1]
    STATE["member_no"] = member_no.group(1)
    STATE["org_a"] = orgs["a"]
    staff_ctx.close()

    sign_in(worker, "member", member_no=member_no.group(1))
    expect(worker.get_by_test_id("overview")).to_contain_text(member_no.group(1))
    screenshot(worker, "member-overview")
    reload_until(worker, "/me/card", "卡号")
    expect(worker.locator("[data-testid=card] svg")).to_be_visible()
    screenshot(worker, "member-card")
    worker_ctx.close()


def test_a_sibling_organisations_staff_see_neither_the_queue_nor_the_dossier(
    browser: Browser, console: ServiceProcess, orgs: dict[str, str]
) -> None:
    assert STATE, "runs after the member has joined"
    context, staff = person(browser, console)
    sign_in(staff, "staff", org_id=orgs["b"], name="赵干事")
    staff.goto("/staff/queue")
    expect(staff.get_by_test_id("empty")).to_be_visible()
    staff.goto(f"/staff/queue?org={orgs['a']}")  # another organisation's queue, asked for by address
    expect(staff.get_by_test_id("message")).to_contain_text("无权")
    screenshot(staff, "sibling-refused")
    staff.goto(f"/staff/members/{STATE['member_id']}")
    expect(staff.get_by_test_id("message")).to_contain_text("无权")
    staff.goto("/staff/members")
    staff.get_by_label("会员号").fill(STATE["member_no"])
    staff.get_by_role("button", name="查询").click()
    expect(staff.get_by_test_id("lookup-error")).to_contain_text("未找到")
    context.close()


def test_a_member_raises_a_request_and_staff_answer_it(browser: Browser, console: ServiceProcess) -> None:
    m_ctx, member = person(browser, console, PHONE)
    sign_in(member, "member", member_no=STATE["member_no"])

    def raised() -> bool:
        member.goto("/me/requests")
        member.get_by_label("类别").select_option("wages")
        member.get_by_label("诉求内容").fill("加班费未按规定支付")
        member.get_by_role("button", name="提交诉求").click()
        return member.get_by_text("您的诉求已提交").count() > 0  # 404 until feedback has heard of the member

    eventually(raised, "the feedback service to know the member")
    s_ctx, staff = person(browser, console)
    sign_in(staff, "staff", org_id=STATE["org_a"], name="李干事")
    staff.goto("/staff/requests")
    expect(staff.get_by_test_id("requests")).to_contain_text("加班费未按规定支付")
    screenshot(staff, "staff-requests")
    staff.get_by_label("答复").first.fill("已联系单位核实，将督促补发。")
    staff.get_by_role("button", name="答复").first.click()
    expect(staff.get_by_test_id("message")).to_contain_text("答复已送达")
    reload_until(member, "/me/requests", "已答复")
    screenshot(member, "member-requests")
    s_ctx.close()
    m_ctx.close()


def test_a_transfer_released_and_accepted_from_two_staff_sessions(
    browser: Browser, console: ServiceProcess, orgs: dict[str, str], admin: dict[str, httpx.Client]
) -> None:
    member_id = STATE["member_id"]
    m_ctx, member = person(browser, console, PHONE)
    sign_in(member, "member", member_no=STATE["member_no"])

    def requested() -> bool:
        member.goto("/me/transfer?q=陆家嘴")
        member.get_by_label("陆家嘴街道工会").check()
        member.get_by_label("转移理由").fill("工作调动")
        if STATE.get("shot") is None:
            screenshot(member, "member-transfer")
            STATE["shot"] = True
        member.get_by_role("button", name="申请转移").click()
        return member.get_by_text("转移申请已提交").count() > 0  # 404 until transfer has heard of the member

    eventually(requested, "the transfer service to know the member")
    member.goto("/me/transfer")
    expect(member.get_by_test_id("open-transfer")).to_contain_text("同意转出")
    m_ctx.close()
    a_ctx, a = person(browser, console)
    b_ctx, b = person(browser, console, PHONE)
    sign_in(a, "staff", org_id=orgs["a"], name="李干事")
    sign_in(b, "staff", org_id=orgs["b"], name="赵干事")
    a.goto("/staff/transfers")
    expect(a.get_by_test_id("releasing")).to_contain_text("工作调动")
    screenshot(a, "staff-transfers")
    b.goto("/staff/transfers")
    expect(b.get_by_test_id("accepting")).not_to_contain_text("工作调动")  # not released yet
    a.get_by_role("button", name="同意转出").click()
    expect(a.get_by_test_id("message")).to_contain_text("已同意转出")
    b.goto("/staff/transfers")
    b.get_by_role("button", name="接收转入").click()
    expect(b.get_by_test_id("message")).to_contain_text("转移完成")

    def in_b() -> bool:
        b.goto(f"/staff/members/{member_id}")
        return b.get_by_test_id("dossier").count() > 0 and "陆家嘴街道工会" in b.get_by_test_id("dossier").inner_text()

    eventually(in_b, "the member in organisation b's subtree")
    expect(b.get_by_test_id("timeline")).to_be_visible()
    a_ctx.close()
    b_ctx.close()


def test_a_campaign_voted_in_the_browser_and_its_results_shown(
    browser: Browser, console: ServiceProcess, orgs: dict[str, str], admin: dict[str, httpx.Client]
) -> None:
    m, f = admin["membership"], admin["feedback"]
    town = org(m, "金桥镇工会", "township", orgs["county"])
    voters, position = [], ""
    for _ in range(3):
        r = m.post("/applications", json=data.application(town))
        assert r.status_code == 201, r.text
        r = m.post(f"/applications/{r.json()['application_id']}/approve", json={})
        assert r.status_code == 200, r.text
        voters.append(r.json())
        position = r.json()["position"]
    now = datetime.now(UTC)
    body = {
        "title": "2026年度工会工作满意度评议",
        "subject_type": "organization",
        "subject_id": town,
        "electorate_org_id": town,
        "electorate": "members",
        "opens_at": (now - timedelta(minutes=1)).isoformat(),
        "closes_at": (now + timedelta(days=7)).isoformat(),
        "min_turnout": 3,
    }
    r = f.post("/campaigns", json=body, headers={"X-After-Position": position})  # the electorate holds all three
    assert r.status_code == 201, r.text
    campaign_id = r.json()["campaign_id"]

    context, member = person(browser, console, PHONE)
    sign_in(member, "member", member_no=voters[0]["member_no"])
    member.goto(f"/campaigns/{campaign_id}")
    member.get_by_label("4 分 · 满意").check()
    member.get_by_label("意见建议（可选，加密保存，只在结果中匿名显示）").fill("希望多办职工技能培训")
    screenshot(member, "member-vote")
    member.get_by_role("button", name="投票").click()
    expect(member.get_by_test_id("message")).to_contain_text("匿名投入票箱")
    member.goto(f"/campaigns/{campaign_id}/results")
    expect(member.get_by_test_id("withheld")).to_contain_text("尚未结束")
    context.close()
    for voter, score in zip(voters[1:], (5, 3), strict=True):
        r = f.post(
            f"/campaigns/{campaign_id}/ballots",
            json={"score": score},
            headers=auth.bearer("member", member_id=voter["member_id"]),
        )
        assert r.status_code == 201, r.text

    context, staff = person(browser, console)
    sign_in(staff, "staff", org_id=town, name="周主席")
    staff.goto(f"/campaigns/{campaign_id}")
    expect(staff.get_by_test_id("turnout")).to_contain_text("3")
    staff.get_by_role("button", name="结束投票并公布结果").click()
    expect(staff.get_by_test_id("average")).to_have_text("4.00")
    expect(staff.get_by_test_id("results")).to_contain_text("3 / 3")
    screenshot(staff, "campaign-results")
    context.close()


def test_the_county_sees_its_tree_with_counts_and_statistics(
    browser: Browser, console: ServiceProcess, orgs: dict[str, str]
) -> None:
    context, staff = person(browser, console)
    sign_in(staff, "staff", org_id=orgs["county"], name="孙部长")
    staff.goto("/staff/organization")
    expect(staff.get_by_test_id("children")).to_contain_text("花木街道工会")
    expect(staff.get_by_test_id("children")).to_contain_text("陆家嘴街道工会")
    total = int(staff.get_by_test_id("total").inner_text())
    assert total >= 4  # the member who moved to b, and the three voters of the campaign
    screenshot(staff, "staff-organization")
    staff.get_by_role("link", name="陆家嘴街道工会").click()
    expect(staff.get_by_role("heading", level=1)).to_have_text("陆家嘴街道工会")
    context.close()
