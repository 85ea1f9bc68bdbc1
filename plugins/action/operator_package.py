# Copyright: llmops.inference contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Place a package the operator supplies on the node (see plugins/modules/operator_package.py)."""

from __future__ import annotations

import posixpath

from ansible.plugins.action import ActionBase

ARGUMENT_SPEC = dict(
    src=dict(type="str", required=True),
    dest=dict(type="str", required=True),
    checksum=dict(type="str", default=""),
    mode=dict(type="str", default="0600"),
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = True
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _spec, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        folder = self._execute_module(
            module_name="llmops.inference.config_files",
            module_args={"directories": [{"path": posixpath.dirname(args["dest"]), "mode": "0700"}]},
            task_vars=task_vars)
        if folder.get("failed"):
            result.update(folder)
            return result
        if "://" in args["src"]:
            fetch = dict(url=args["src"], dest=args["dest"], mode=args["mode"])
            if args["checksum"]:
                fetch["checksum"] = args["checksum"]
            placed = self._execute_module(module_name="ansible.legacy.get_url", module_args=fetch, task_vars=task_vars)
        else:
            # The copy action itself, as the template action uses it: it transfers the file.
            copy_task = self._task.copy()
            copy_task.args.clear()
            copy_task.args.update(src=args["src"], dest=args["dest"], mode=args["mode"])
            copy = self._shared_loader_obj.action_loader.get(
                "ansible.legacy.copy", task=copy_task, connection=self._connection, play_context=self._play_context,
                loader=self._loader, templar=self._templar, shared_loader_obj=self._shared_loader_obj)
            placed = copy.run(task_vars=task_vars)
        result.update(placed)
        placed_new = bool(placed.get("changed"))
        result["changed"] = placed_new or bool(folder.get("changed"))
        # Check mode: a new file would be there, so nothing can look into it yet.
        result["pending"] = bool(self._task.check_mode and placed_new)
        result["placed"] = placed_new
        return result
