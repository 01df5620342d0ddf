"""The studio: where the practice's marketers edit, check, preview and publish the course's emails.

Every page is under /studio and needs a studio session (web/studio/auth.py); a subscriber's signed
link never opens any of it.
"""

from __future__ import annotations

from fastapi import APIRouter

from web.studio import audience, audit, auth, courses, editor, emails, imports, insights, preview, shape, transfer

router = APIRouter(include_in_schema=False)
router.include_router(auth.router)
router.include_router(courses.router)
router.include_router(audit.router)
router.include_router(shape.router)
router.include_router(emails.router)
router.include_router(editor.router)
router.include_router(preview.router)
router.include_router(insights.router)
router.include_router(audience.router)
router.include_router(imports.router)
router.include_router(transfer.router)

# The studio's forms that carry files, and how large each may be: the email form, with its images (and
# its text besides), and the course's page, with its logo: up to a little more than one image; a new
# course from a course file, with the images it holds.
FILE_FORMS: dict[str, int] = {"/studio/save": 3 * 1024 * 1024, "/studio/publish": 3 * 1024 * 1024,
                              "/studio/course": 3 * 1024 * 1024,
                              "/studio/courses/new": transfer.MAX_FILE_BYTES + 64 * 1024,
                              "/studio/import": imports.MAX_FILE_BYTES + 64 * 1024}  # fmt: skip
