#!/usr/bin/env bash
# Builds the synthetic kernel history the bisection test runs over: a git repository over
# Debian's linux-source-6.1 (pristine: the planted-regression patches are taken out of the copy)
# with eight small commits touching mm/shmem.c, one of which is an unconditional regression.
#
#   synthetic-history.sh SRC DEST
#
# SRC is the unpacked (and planted-patched) source tree from the harness cache, which records
# the patches it carries in .shmemfuzz-patches/; DEST is created.
# Idempotent: a DEST whose history is complete (tag synth-bad) is left alone. Author, committer
# and dates are pinned, so the commit ids are the same on every machine.
#
# The commits, oldest first (tag synth-good is the base):
#   1 reword a comment in place           -> the same bzImage as the base (verdict reused)
#   2 a no-op static inline helper
#   3 a pr_debug in shmem_replace_folio
#   4 a typo that breaks the build         -> skipped
#   5 fix the build (reverts 4)            -> the same bzImage as 3 (verdict reused)
#   6 THE REGRESSION: shmem_should_replace_folio() returns false
#   7 a comment
#   8 a no-op static inline helper         (tag synth-bad)
set -euo pipefail
# A calling git (hook, rebase --exec) would point every git below at its own repository.
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_COMMON_DIR
src=$1 dest=$2
if [ -d "$dest/.git" ] && git -C "$dest" rev-parse -q --verify refs/tags/synth-bad >/dev/null; then
  exit 0
fi
rm -rf "$dest" "$dest.partial"
mkdir -p "$(dirname "$dest")"
cp -a "$src" "$dest.partial"
cd "$dest.partial"
# Take out every patch the tree carries, newest first (kbuild/patches.rs records them in order).
for p in $(ls .shmemfuzz-patches/*.patch 2>/dev/null | sort -r); do
  patch -R -p1 --fuzz=0 --quiet < "$p"
done
rm -rf .shmemfuzz-patches .shmemfuzz-source
grep -q planted mm/shmem.c && { echo "the planted patches did not come out" >&2; exit 1; }
# Debian's .gitignore ignores everything at the top level (its packaging repository holds
# only debian/): drop that block, or git would track nothing.
sed -i '/^# Debian packaging/,$d' .gitignore

export GIT_AUTHOR_NAME=shmemfuzz GIT_AUTHOR_EMAIL=shmemfuzz@example.invalid
export GIT_COMMITTER_NAME=shmemfuzz GIT_COMMITTER_EMAIL=shmemfuzz@example.invalid
n=0
commit() {
  n=$((n + 1))
  export GIT_AUTHOR_DATE="2024-01-0$((n % 9 + 1))T00:00:00Z" GIT_COMMITTER_DATE="2024-01-0$((n % 9 + 1))T00:00:00Z"
  git add -A
  git commit -q -m "$1"
}
edit() { # edit PYTHON-REPLACE-OLD NEW: one exact replacement in mm/shmem.c
  python3 - "$1" "$2" <<'PY'
import sys
p = "mm/shmem.c"
s = open(p).read()
old, new = sys.argv[1], sys.argv[2]
assert s.count(old) == 1, f"{old!r} occurs {s.count(old)} times"
open(p, "w").write(s.replace(old, new))
PY
}

git init -q -b main .
git config core.autocrlf false
git config gc.auto 0
commit "linux-source-6.1 6.1.192 (Debian), pristine"
git tag synth-good

# 1: same line count, comment only: the image does not change.
edit ' * Like filemap_add_folio, but error if expected item has gone.' \
     ' * Like filemap_add_folio, but fail if the expected item has gone.'
commit "shmem: reword the comment of shmem_add_to_page_cache"

edit 'static bool shmem_should_replace_folio(struct folio *folio, gfp_t gfp)' \
     'static inline void shmem_synth_noop(void)
{
}

static bool shmem_should_replace_folio(struct folio *folio, gfp_t gfp)'
commit "shmem: add an unused no-op helper"

edit '	if (shmem_should_replace_folio(folio, gfp)) {' \
     '	if (shmem_should_replace_folio(folio, gfp)) {
		pr_debug("shmem: replacing folio at index %lu\n", index);'
commit "shmem: pr_debug when a swapped-in folio is replaced"

edit 'static inline void shmem_synth_noop(void)' 'static inline void shmem_synth_noop(void'
commit "shmem: tidy the no-op helper (breaks the build)"

edit 'static inline void shmem_synth_noop(void' 'static inline void shmem_synth_noop(void)'
commit "shmem: fix the build"

edit '	return folio_zonenum(folio) > gfp_zone(gfp);
}' '	return false;
}'
commit "shmem: skip the zone check of swapped-in folios"

edit 'static bool shmem_should_replace_folio(struct folio *folio, gfp_t gfp)' \
     '/* Folios read from swap in ignorance of the mapping may sit in the wrong zone. */
static bool shmem_should_replace_folio(struct folio *folio, gfp_t gfp)'
commit "shmem: comment shmem_should_replace_folio"

edit 'static inline void shmem_synth_noop(void)' 'static inline void shmem_synth_noop2(void)
{
}

static inline void shmem_synth_noop(void)'
commit "shmem: add a second unused no-op helper"
git tag synth-bad
cd /
mv "$dest.partial" "$dest"
