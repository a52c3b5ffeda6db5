"""Give a fresh server the one program the seed's quickstart assumes exists besides the catalogue.

``qruntime serve --catalogue runtime`` publishes ``sample-program`` (and the rest of the
catalogue); the quickstart also deletes a program with the id ``id-to-delete``, so this uploads
a throwaway one under that id (a bare id needs the admin account that ``qruntime serve`` saves
on first start). The quickstart uploads its own copy of ``sample-program`` every time it runs;
this removes the copies earlier runs left, so the two together always leave one. Run it from the
repository root.
"""

import json
from pathlib import Path

from qruntime import RuntimeDuplicateProgramError, load_account

runtime = load_account().runtime
source = Path("runtime/sample_program.py")
metadata = json.loads(Path("runtime/sample_program.json").read_text())
me = runtime.current_user()["name"]

for program in runtime.programs(refresh=True, limit=None):
    # The catalogue's is public under the bare id; the quickstart's copies have a suffix.
    if program.name == "sample-program" and program.owner == me and not program.is_public:
        runtime.delete_program(program.program_id)
        print(f"removed {program.program_id}, left by an earlier quickstart run")

try:
    runtime.upload_program(
        data=source, metadata=metadata | {"name": "id-to-delete"}, bare_name=True
    )
    print("uploaded id-to-delete")
except RuntimeDuplicateProgramError:
    print("id-to-delete is already there")
