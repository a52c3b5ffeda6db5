"""Give a fresh server what the seed's quickstart assumes exists on the service.

The quickstart prints and runs the public program ``sample-program`` and deletes a program
with the id ``id-to-delete``. This publishes the catalogue's sample program under its bare
name and uploads a throwaway program with that id (both need the admin account that
``qruntime serve`` saves on first start). Run it from the repository root.
"""

import json
from pathlib import Path

from qruntime import RuntimeDuplicateProgramError, load_account

runtime = load_account().runtime
source = Path("runtime/sample_program.py")
metadata = json.loads(Path("runtime/sample_program.json").read_text())

for name, public in (("sample-program", True), ("id-to-delete", False)):
    try:
        runtime.upload_program(
            data=source, metadata=metadata | {"name": name, "is_public": public}, bare_name=True
        )
        print(f"uploaded {name}")
    except RuntimeDuplicateProgramError:
        print(f"{name} is already there")
