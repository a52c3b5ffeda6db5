"""Give a fresh server the one program the seed's quickstart assumes exists besides the catalogue.

``qruntime serve --catalogue runtime`` publishes ``sample-program`` (and the rest of the
catalogue); the quickstart also deletes a program with the id ``id-to-delete``, so this uploads
a throwaway one under that id (a bare id needs the admin account that ``qruntime serve`` saves
on first start). Run it from the repository root.
"""

import json
from pathlib import Path

from qruntime import RuntimeDuplicateProgramError, load_account

runtime = load_account().runtime
source = Path("runtime/sample_program.py")
metadata = json.loads(Path("runtime/sample_program.json").read_text())

try:
    runtime.upload_program(
        data=source, metadata=metadata | {"name": "id-to-delete"}, bare_name=True
    )
    print("uploaded id-to-delete")
except RuntimeDuplicateProgramError:
    print("id-to-delete is already there")
