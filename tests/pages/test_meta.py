"""What search engines and link previews read: descriptions, Open Graph tags, robots.txt."""

import html
import re

import pytest

META = re.compile(r'<meta (?:name|property)="([^"]+)" content="([^"]*)">')
OPEN_GRAPH = {"description", "og:type", "og:site_name", "og:title", "og:description", "og:url"}
SITE_DESCRIPTION = "Make a poll in seconds, share its link, and watch the votes come in live."


def meta_tags(page: str) -> dict[str, str]:
    """The page's <meta> name/property -> content, unescaped; a name twice fails the test."""
    found = META.findall(page)
    names = [name for name, _ in found]
    assert len(names) == len(set(names)), f"a meta tag appears twice: {names}"
    return {name: html.unescape(content) for name, content in found}


@pytest.fixture
async def every_page_type(client, make_poll):
    """Path -> (status, og:url path) of one page of each type."""
    poll = await make_poll("Where shall we eat?")
    public = f"/poll/{poll['id']}"
    return {
        "/": (200, "/"),
        "/?page=1": (200, "/"),
        public: (200, public),
        f"{public}/results": (200, public),
        f"{public}/results?already=1": (200, public),
        f"{public}/present": (200, public),
        poll["manage"]: (200, public),  # never the private link
        "/poll/new": (200, "/poll/new"),
        "/poll/deleted": (200, "/poll/deleted"),
        # Error pages echo nothing of the address asked for (a manage token, say).
        "/poll/12345": (404, "/"),
        f"{public}/vote": (405, "/"),
        f"{public}/manage/{'x' * 43}": (404, "/"),
    }


async def test_every_page_has_a_description_and_open_graph_tags_with_its_full_address(
    client, every_page_type
):
    base = str(client.make_url("/")).rstrip("/")
    for path, (status, og_path) in every_page_type.items():
        response = await client.get(path)
        assert response.status == status, path
        tags = meta_tags(await response.text())
        assert tags.keys() >= OPEN_GRAPH, (path, tags)
        assert tags["description"] and tags["og:description"] == tags["description"], path
        assert tags["og:type"] == "website" and tags["og:title"], path
        assert tags["og:url"] == base + og_path, path


async def test_a_polls_pages_describe_it_by_its_question(client, make_question):
    question = make_question('Fish & "chips" <or> pie?', choices=("Fish", "Pie"))
    for suffix in ("", "/results", "/present"):
        page = await (await client.get(f"/poll/{question['id']}{suffix}")).text()
        tags = meta_tags(page)
        assert tags["description"] == 'Fish & "chips" <or> pie?', suffix
        assert tags["og:title"] == tags["og:description"] == tags["description"], suffix
        assert "&lt;or&gt;" in page and "<or>" not in page  # escaped in the attribute


async def test_pages_not_about_one_poll_describe_the_site(client):
    for path in ("/", "/poll/new", "/poll/12345"):
        tags = meta_tags(await (await client.get(path)).text())
        assert tags["description"] == SITE_DESCRIPTION, path
    assert meta_tags(await (await client.get("/")).text())["og:title"] == "Latest polls"


async def test_manage_page_tags_point_at_the_public_poll_not_the_private_link(client, make_poll):
    poll = await make_poll("Private?")
    page = await (await client.get(poll["manage"])).text()
    tags = meta_tags(page)
    assert tags["og:url"] == str(client.make_url(f"/poll/{poll['id']}"))
    assert poll["token"] not in " ".join(tags.values())


async def test_cached_pages_name_the_host_each_reader_reached(client, make_question):
    # A page cached for every reader must not hand one reader's Host header to the next.
    question = make_question("Which host?")
    for path in ("/", f"/poll/{question['id']}", f"/poll/{question['id']}/results"):
        for host in ("polls.example.org", "attacker.example", "polls.example.org"):
            page = await (await client.get(path, headers={"Host": host})).text()
            assert meta_tags(page)["og:url"].startswith(f"http://{host}/"), (path, host)


async def test_robots_txt_lets_every_crawler_fetch_every_page(client):
    response = await client.get("/robots.txt")
    assert response.status == 200
    assert response.content_type == "text/plain"
    lines = [line for line in (await response.text()).splitlines() if line and not line.startswith("#")]
    assert lines == ["User-agent: *", "Allow: /"]


async def test_no_page_tells_search_engines_to_stay_away(client, make_poll):
    # A manage page is private by its secret address (robots.py), not by `noindex`: a page that
    # says `noindex` loses Lighthouse's SEO marks, and a crawler never learns the address anyway.
    poll = await make_poll("Hidden?")
    for response in (
        await client.get(poll["manage"]),
        await client.post(poll["manage"], data={"action": "delete"}),
        await client.get(f"/poll/{poll['id']}"),
    ):
        assert response.status == 200
        page = await response.text()
        assert "robots" not in meta_tags(page) and "noindex" not in page
        assert "X-Robots-Tag" not in response.headers
