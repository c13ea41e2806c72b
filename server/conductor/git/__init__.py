"""Conductor owns git: every git command Conductor runs, with hooks off and nobody's config trusted.

Why a package of its own: the verdict is only as good as the git state it stands on. An agent
must not get anything past the evidence through git — hooks that run inside Conductor's commits,
an amended or reset branch, a moved ref, a changed config. So:

* every command runs through :func:`conductor.git.command.run`: no ``GIT_*`` variable of the
  environment, no system or global config, hooks pointed at an empty place, a fixed identity;
* a step's commit is never taken from an agent's index or history: :mod:`conductor.git.objects`
  builds it from the verified file tree with plumbing (blobs, ``update-index``, ``write-tree``,
  ``commit-tree``);
* each attempt works in a throwaway repository of its own (:mod:`conductor.git.copies`) that
  borrows the project's objects; its index, refs, hooks and config belong to that attempt alone;
* a verified step reaches its fork by a merge Conductor computes (:mod:`conductor.git.branches`,
  ``merge-tree``), and the user's branch only by the final merge;
* the git state shared beyond an attempt (hooks, config, refs, the user's HEAD and index) is
  fingerprinted around each attempt and restored when an agent changed it
  (:mod:`conductor.git.shared`).
"""

from conductor.git.command import GitError, git, run

__all__ = ["GitError", "git", "run"]
