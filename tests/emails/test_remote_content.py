"""No email loads anything from elsewhere: wherever a mail client or a browser fetches a URL by itself
(attributes, CSS, SVG, Outlook's conditional comments, <meta refresh>), only embedded images pass.

Each vector reaches the rendered HTML byte for byte (a Jinja string marked safe, inside <mj-raw>): the
check reads what readers' mail clients would, whatever MJML would have made of it."""

from __future__ import annotations

import json

import pytest

from course.curriculum import Course
from course.settings import Settings
from emails.checks import content_problems
from emails.compiler import TemplateSet, default_templates
from emails.rendering import SAMPLE, Renderer
from emails.validation import check

FOOTER = '<mj-include path="_base/footer.mjml" />'
REMOTE = "no remote images or files (they track readers and break offline)"
IMPORT = "no style sheets from elsewhere"
ELSEWHERE = "links go to the course's own pages only"
T = "https://t.example/p.png"


def with_welcome(mjml: str) -> TemplateSet:
    source = default_templates().source("welcome/body.mjml")
    assert FOOTER in source
    return default_templates().with_file("welcome/body.mjml", source.replace(FOOTER, FOOTER + mjml))


def raw_html(markup: str) -> str:
    """MJML that puts ``markup`` into the email exactly: a Jinja string (no "<", ">" or "&" for MJML to
    read) marked safe."""
    literal = json.dumps(markup).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f"<mj-raw>{{{{ {literal} | safe }}}}</mj-raw>"


def welcome_problems(templates: TemplateSet, course: Course, settings: Settings) -> list[str]:
    renderer = Renderer(course, settings, templates)
    context = renderer.context("welcome", SAMPLE)
    rendered = renderer.render_with("welcome", context)
    return [problem.message for problem in content_problems(rendered, context, str(settings.base_url))]


VECTORS = [
    # CSS url() in a style attribute: any quoting, case, escape, entity or comment.
    (f'<div style="background:url({T})">x</div>', REMOTE, "url() in the style of <div>"),
    (f"<div style=\"background-image: url( '{T}' )\">x</div>", REMOTE, "url() in the style of <div>"),
    (f'<div style="background:URL(&quot;{T}&quot;)">x</div>', REMOTE, "url() in the style of <div>"),
    (f'<div style="background:u\\72l({T})">x</div>', REMOTE, "url() in the style of <div>"),
    ('<div style="background:\\75 \\52 \\4c (//t.example/p.png)">x</div>', REMOTE, "//t.example/p.png"),
    (f'<div style="background:ur&#108;({T})">x</div>', REMOTE, "url() in the style of <div>"),
    ('<div style="background:/*a*/url(h\\74tps://t.example/p.png)/*b*/">x</div>', REMOTE, T),
    (f"<div style=\"background-image:image-set('{T}' 1x)\">x</div>", REMOTE, "image-set() in the style of <div>"),
    (f"<div style=\"background:-webkit-image-set(url({T}) 1x)\">x</div>", REMOTE, "url() in the style of <div>"),
    (f"<div style=\"filter:progid:DXImageTransform.Microsoft.AlphaImageLoader(src='{T}')\">x</div>", REMOTE, T),
    (f'<svg><rect fill="url({T}#g)"/></svg>', REMOTE, "url() in the fill of <rect>"),
    # <style>: url() and @import, with or without url(), escaped, in capitals, inside SVG.
    (f"<style>p {{ background: url({T}) }}</style>", REMOTE, "url() in a <style> block"),
    (f"<STYLE>P {{ BACKGROUND: URL('{T}') }}</STYLE>", REMOTE, "url() in a <style> block"),
    ('<style>@import "https://t.example/s.css";</style>', IMPORT, "@import in a <style> block"),
    ("<style>@import url(//t.example/s.css) screen;</style>", IMPORT, "//t.example/s.css"),
    ("<style>@IMPORT/**/'https://t.example/s.css';</style>", IMPORT, "@import in a <style> block"),
    ('<style>@\\69mport "https://t.example/s.css";</style>', IMPORT, "@import in a <style> block"),
    ("<svg><style>&#64;import url(https://t.example/s.css);</style></svg>", IMPORT, "@import in a <style> block"),
    (f"<svg><style><img src={T}></style></svg>", REMOTE, "the src of <img>, inside a <style> block"),
    # SVG images, video posters and every other element that loads something.
    (f'<svg><image href="{T}" width="10" height="10"/></svg>', REMOTE, "the href of <image>"),
    (f'<svg><image xlink:href="{T}"/></svg>', REMOTE, "the xlink:href of <image>"),
    ("<SVG><IMAGE HREF=//t.example/p.png /></SVG>", REMOTE, "the href of <image>"),
    (f'<svg><use href="{T}#icon"/></svg>', REMOTE, "the href of <use>"),
    (f'<svg><image><set attributeName="href" to="{T}"/></image></svg>', REMOTE, "the to of <set>"),
    (f'<video poster="{T}"></video>', REMOTE, "the poster of <video>"),
    ('<VIDEO POSTER=" &#x68;ttps://t.example/p.png"></VIDEO>', REMOTE, "the poster of <video>"),
    ('<audio src="https://t.example/a.mp3"></audio>', REMOTE, "the src of <audio>"),
    ('<video><source src="//t.example/v.mp4"></video>', REMOTE, "the src of <source>"),
    ('<video><track src="https://t.example/t.vtt"></video>', REMOTE, "the src of <track>"),
    ('<link rel="stylesheet" href="https://t.example/s.css">', REMOTE, "the href of <link>"),
    ('<link rel="stylesheet" href="data:text/css,@import url(https://t.example/s.css)">', REMOTE, "<link>"),
    (f'<img src="data:image/png;base64,AAAA" srcset="data:image/png;base64,AAAA 1x, {T} 2x">', REMOTE,
     "the srcset of <img>"),
    (f'<img src="data:image/png;base64,AAAA"><img src="{T}" src="data:image/png;base64,AAAA">', REMOTE,
     "the src of <img>"),
    (f'<table background="{T}"><tr><td background="{T}">x</td></tr></table>', REMOTE, "the background of <table>"),
    ('<img src="\\\\t.example\\p.png">', REMOTE, "the src of <img>"),
    ('<img src="logo.png">', REMOTE, "logo.png"),
    (f'<a href="https://course.example.org/x" ping="{T}">x</a>', REMOTE, "the ping of <a>"),
    # What also stops the email whole, and says where the remote part is.
    (f'<input type="image" src="{T}">', REMOTE, "the src of <input>"),
    (f'<object data="{T}"></object>', REMOTE, "the data of <object>"),
    (f'<embed src="{T}">', REMOTE, "the src of <embed>"),
    ('<iframe src="https://t.example/"></iframe>', REMOTE, "the src of <iframe>"),
    # What this parser would take for a comment or declaration, and a browser or Outlook for markup.
    (f"<!--> <img src={T}> -->", REMOTE, "inside an HTML comment"),
    (f"<!-- x --!> <img src={T}> -->", REMOTE, "inside an HTML comment"),
    (f'<!--[if mso]><v:rect><v:fill type="tile" src="{T}" /></v:rect><![endif]-->', REMOTE, "the src of <v:fill>"),
    # Sending readers away without a click, or to another site by another kind of link.
    ('<meta http-equiv="refresh" content="0;url=https://t.example/">', '<meta http-equiv="refresh">', "by itself"),
    ('<META HTTP-EQUIV=" Refresh " CONTENT="0; URL=https://t.example/">', '<meta http-equiv="refresh">', "readers"),
    ('<meta http-equiv="set-cookie" content="a=b">', '<meta http-equiv="set-cookie">', "not allowed"),
    ('<svg><a xlink:href="https://t.example/">x</a></svg>', ELSEWHERE, "the xlink:href of <a>"),
    ('<map name="m"><area href="https://t.example/" shape="default"></map>', ELSEWHERE, "the href of <area>"),
    ('<div style="width: expression(alert(1))">x</div>', "CSS expression() runs code", "the style of <div>"),
]  # fmt: skip


@pytest.mark.parametrize(("markup", "says", "where"), VECTORS)
def test_remote_content_anywhere_in_the_html_is_refused_and_located(
    course: Course, settings: Settings, markup: str, says: str, where: str
) -> None:
    messages = welcome_problems(with_welcome(raw_html(markup)), course, settings)
    assert any(says in message and where in message for message in messages), messages


@pytest.mark.parametrize(
    "markup",
    [
        '<img src="data:image/png;base64,iVBORw0KGgo=" alt="">',
        '<img src="data:image/png;base64,AAAA" srcset="data:image/png;base64,AAAA 1x, data:image/png;base64,BB 2x">',
        '<div style="background: url(data:image/gif;base64,R0lGODlhAQABAAAAACw=); color: #333">x</div>',
        "<div style=\"font-family: 'Segoe UI', Arial; content: 'Note: this'\">x</div>",
        '<svg><defs><linearGradient id="g"/></defs><rect fill="url(#g)"/><use href="#g"/></svg>',
        '<a href="#top">Top</a><a href="mailto:care@example.org">Write to us</a>',
        "<style>@media (prefers-color-scheme: dark) { .card { background: #2a2420 !important; } }</style>",
        "<!-- a note, <![ with odd brackets --><!--[if mso]><table><tr><td>x</td></tr></table><![endif]-->",
    ],
)
def test_what_loads_nothing_from_elsewhere_passes(course: Course, settings: Settings, markup: str) -> None:
    assert welcome_problems(with_welcome(raw_html(markup)), course, settings) == []


def test_a_section_background_and_an_mjml_style_import_are_refused_by_the_publish_check(
    course: Course, settings: Settings
) -> None:
    templates = with_welcome(
        '<mj-section background-url="https://t.example/bg.png"><mj-column><mj-text>Hi</mj-text></mj-column>'
        "</mj-section>"
    )
    head = templates.source("_base/head.mjml").replace("<mj-style>", "<mj-style>@import url(//t.example/f.css);")
    found = [(problem.email, problem.message) for problem in check(templates.with_file("_base/head.mjml", head),
                                                                   course, settings)]  # fmt: skip
    assert any(email == "welcome" and REMOTE in message and "t.example/bg.png" in message for email, message in found)
    assert any(email == "day-03" and IMPORT in message and "//t.example/f.css" in message for email, message in found)


def test_the_link_to_ones_data_is_required_in_the_email_that_answers_a_request_for_it(
    course: Course, settings: Settings
) -> None:
    files = dict(default_templates().files)
    files["preferences-link/body.mjml"] = files["preferences-link/body.mjml"].replace("{{ links.data }}", "#")
    problems = check(TemplateSet(files), course, settings)
    assert any(p.email == "preferences-link" and "the link to their data is missing" in p.message for p in problems)
