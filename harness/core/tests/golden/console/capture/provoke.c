// SPDX-License-Identifier: GPL-2.0-only
// Test module used to provoke real kernel reports for the console parser golden files
// (see ../SOURCES.md). It does deliberately broken things: never load it outside a throw-away VM.
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/delay.h>
#include <linux/mm.h>
#include <linux/gfp.h>
#include <linux/sched.h>
#include <linux/vmstat.h>
#include <linux/slab.h>
#include <linux/rcupdate.h>
#include <linux/kfence.h>

static noinline void provoke_free(struct kmem_cache *c, void *p) { kmem_cache_free(c, p); }
static noinline void provoke_slub_uaf(void) {
  struct kmem_cache *c = kmem_cache_create("provoke_cache", 96, 0, 0, NULL);
  char *p, *q;
  if (!c) return;
  p = kmem_cache_alloc(c, GFP_KERNEL);
  if (!p) return;
  provoke_free(c, p);
  p[8] = 0x42; /* write after free */
  q = kmem_cache_alloc(c, GFP_KERNEL);
  pr_info("provoke: realloc %s\n", q == p ? "same" : "different");
}
static noinline void provoke_kfence_uaf(void) {
  struct kmem_cache *c = kmem_cache_create("provoke_cache", 96, 0, 0, NULL);
  char *p = NULL;
  int i;
  if (!c) return;
  for (i = 0; i < 20000; i++) {
    p = kmem_cache_alloc(c, GFP_KERNEL);
    if (p && is_kfence_address(p)) break;
    if (p) kmem_cache_free(c, p);
    p = NULL;
    usleep_range(200, 400);
  }
  if (!p) { pr_info("provoke: no kfence object\n"); return; }
  provoke_free(c, p);
  pr_info("provoke: read %d\n", READ_ONCE(p[8]));
}

static char *what = "none";
module_param(what, charp, 0444);
static int secs = 30;
module_param(secs, int, 0444);
static int delta = 0;
module_param(delta, int, 0444);

static noinline void provoke_warn(void) { WARN_ON(1); }
static noinline void provoke_bug(void) { BUG(); }
static noinline void provoke_null(void) { *(volatile int *)0 = 1; }
static noinline void provoke_gpf(void) { *(volatile long *)0xdead000000000100UL = 1; }
static noinline void provoke_list_del(void) {
  LIST_HEAD(head);
  struct list_head a, b;
  list_add(&a, &head);
  list_add(&b, &head);
  struct list_head c = { &c, &c };
  a.prev = &c; /* a->prev->next != a */
  list_del(&a);
}
static noinline void provoke_list_add(void) {
  LIST_HEAD(head);
  struct list_head a, b;
  struct list_head c;
  list_add(&a, &head);
  a.prev = &c; /* next->prev != prev */
  list_add(&b, &head);
}
static noinline void provoke_spin(void) {
  unsigned long end = jiffies + secs * HZ;
  preempt_disable();
  while (time_before(jiffies, end)) cpu_relax();
  preempt_enable();
}
static struct rcu_head provoke_rcu_head;
static void provoke_rcu_cb(struct rcu_head *h) { pr_info("provoke: rcu callback\n"); }
static noinline void provoke_rcu_stall(void) {
  call_rcu(&provoke_rcu_head, provoke_rcu_cb);
  provoke_spin();
}
static noinline void provoke_sleep(void) {
  schedule_timeout_uninterruptible(secs * HZ);
}
static noinline void provoke_bad_page(void) {
  struct page *p = alloc_pages(GFP_KERNEL, 1);
  if (!p) return;
  atomic_set(&p->_mapcount, 0);
  __free_pages(p, 1);
}
static struct page *drain_pages[8192];
static noinline void provoke_bad_page_drain(void) {
  int i, n = 0;
  provoke_bad_page();
  for (i = 0; i < 8192; i++) {
    drain_pages[i] = alloc_pages(GFP_KERNEL, 1);
    if (drain_pages[i]) n++;
  }
  for (i = 0; i < 8192; i++)
    if (drain_pages[i]) __free_pages(drain_pages[i], 1);
  pr_info("provoke: drained %d\n", n);
}
static noinline void provoke_vmstat(void) {
  struct page *p = alloc_page(GFP_KERNEL);
  if (!p) return;
  mod_node_page_state(page_pgdat(p), NR_SHMEM, delta);
  __free_page(p);
}

static int __init provoke_init(void) {
  pr_info("provoke: %s\n", what);
  if (!strcmp(what, "warn")) provoke_warn();
  else if (!strcmp(what, "bug")) provoke_bug();
  else if (!strcmp(what, "null")) provoke_null();
  else if (!strcmp(what, "gpf")) provoke_gpf();
  else if (!strcmp(what, "listdel")) provoke_list_del();
  else if (!strcmp(what, "listadd")) provoke_list_add();
  else if (!strcmp(what, "spin")) provoke_spin();
  else if (!strcmp(what, "sleep")) provoke_sleep();
  else if (!strcmp(what, "rcu")) provoke_rcu_stall();
  else if (!strcmp(what, "badpage2")) provoke_bad_page_drain();
  else if (!strcmp(what, "badpage")) provoke_bad_page();
  else if (!strcmp(what, "vmstat")) provoke_vmstat();
  else if (!strcmp(what, "slub")) provoke_slub_uaf();
  else if (!strcmp(what, "kfence")) provoke_kfence_uaf();
  return 0;
}
static void __exit provoke_exit(void) { rcu_barrier(); }
module_init(provoke_init);
module_exit(provoke_exit);
MODULE_LICENSE("GPL");
