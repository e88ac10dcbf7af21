// SPDX-License-Identifier: GPL-2.0-only
/*
 * The ioctls that work on any shmem file: SET_DMA32 constrains its mapping as
 * an importing driver would, PAGE_INFO reports where each of its pages is.
 */

#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mmzone.h>
#include <linux/pagemap.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/swapops.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>

#include <drm/drm_file.h>

#include "gma500_mock_drv.h"

/* Entries filled under RCU between two copies to user space. */
#define GMA500_MOCK_CHUNK	128

/* Errors: EBADF, EINVAL (not a shmem file, flags). */
int gma500_mock_set_dma32_ioctl(struct drm_device *dev, void *data,
				struct drm_file *file)
{
	struct drm_gma500_mock_set_dma32 *args = data;
	struct file *filp;
	int ret = 0;

	if (args->flags)
		return -EINVAL;
	filp = fget(args->fd);
	if (!filp)
		return -EBADF;
	if (shmem_file(filp))
		mapping_set_gfp_mask(filp->f_mapping, GFP_KERNEL | __GFP_DMA32);
	else
		ret = -EINVAL;
	fput(filp);
	return ret;
}

static u32 gma500_mock_zone(struct page *page)
{
	switch (page_zonenum(page)) {
#ifdef CONFIG_ZONE_DMA
	case ZONE_DMA:
		return GMA500_MOCK_ZONE_DMA;
#endif
#ifdef CONFIG_ZONE_DMA32
	case ZONE_DMA32:
		return GMA500_MOCK_ZONE_DMA32;
#endif
	case ZONE_NORMAL:
		return GMA500_MOCK_ZONE_NORMAL;
	case ZONE_MOVABLE:
		return GMA500_MOCK_ZONE_MOVABLE;
	default:
		return GMA500_MOCK_ZONE_OTHER;
	}
}

/* Fills @p for the page at @index of @folio, which the caller holds. */
static void gma500_mock_fill(struct drm_gma500_mock_page *p,
			     struct folio *folio, pgoff_t index,
			     struct gma500_mock_object *mobj)
{
	struct page *page = folio_file_page(folio, index);
	u32 flags = 0;

	p->state = GMA500_MOCK_PAGE_RESIDENT;
	p->pfn = page_to_pfn(page);
	p->zone = gma500_mock_zone(page);
	p->folio_order = folio_order(folio);
	if (mobj && index < mobj->base.size >> PAGE_SHIFT) {
		if (mobj->pages && mobj->pages[index] == page)
			flags |= GMA500_MOCK_PAGE_PINNED;
		if (mobj->mapped && mobj->mapped[index] == page)
			flags |= GMA500_MOCK_PAGE_GEM_MAPPED;
	}
	if (folio_maybe_dma_pinned(folio))
		flags |= GMA500_MOCK_PAGE_DMA_PINNED;
	if (folio_test_dirty(folio))
		flags |= GMA500_MOCK_PAGE_DIRTY;
	if (folio_test_writeback(folio))
		flags |= GMA500_MOCK_PAGE_WRITEBACK;
	if (folio_test_swapcache(folio))
		flags |= GMA500_MOCK_PAGE_SWAPCACHE;
	if (folio_test_lru(folio))
		flags |= GMA500_MOCK_PAGE_LRU;
	if (folio_test_unevictable(folio))
		flags |= GMA500_MOCK_PAGE_UNEVICTABLE;
	if (folio_mapped(folio))
		flags |= GMA500_MOCK_PAGE_MAPPED;
	if (page == folio_page(folio, 0))
		flags |= GMA500_MOCK_PAGE_HEAD;
	p->flags = flags;
}

/*
 * Fills @n entries from @index. The xarray is read under RCU; a resident
 * folio is looked at with a speculative reference, dropped before moving on.
 */
static void gma500_mock_walk(struct address_space *mapping, pgoff_t index,
			     unsigned int n, struct drm_gma500_mock_page *out,
			     struct gma500_mock_object *mobj)
{
	XA_STATE(xas, &mapping->i_pages, index);
	struct folio *folio;
	unsigned int i;

	memset(out, 0, n * sizeof(*out));
	if (mobj)
		mutex_lock(&mobj->lock);
	rcu_read_lock();
	for (i = 0; i < n; i++) {
		xas_set(&xas, index + i);
retry:
		xas_reset(&xas);
		folio = xas_load(&xas);
		if (xas_retry(&xas, folio))
			goto retry;
		if (!folio)
			continue;
		if (xa_is_value(folio)) {
			swp_entry_t entry = radix_to_swp_entry(folio);

			out[i].state = GMA500_MOCK_PAGE_SWAPPED;
			out[i].swap_type = swp_type(entry);
			out[i].swap_offset = swp_offset(entry);
			continue;
		}
		if (!folio_try_get(folio))
			goto retry;
		if (unlikely(folio != xas_reload(&xas))) {
			folio_put(folio);
			goto retry;
		}
		gma500_mock_fill(&out[i], folio, index + i, mobj);
		folio_put(folio);
	}
	rcu_read_unlock();
	if (mobj)
		mutex_unlock(&mobj->lock);
}

static u32 gma500_mock_mapping_flags(struct address_space *mapping,
				     struct gma500_mock_object *mobj)
{
	u32 flags = 0;

	if (mapping_gfp_constraint(mapping, __GFP_DMA32))
		flags |= GMA500_MOCK_MAPPING_DMA32;
	if (mapping_gfp_constraint(mapping, __GFP_DMA))
		flags |= GMA500_MOCK_MAPPING_DMA;
	if (mapping_unevictable(mapping))
		flags |= GMA500_MOCK_MAPPING_UNEVICTABLE;
	if (mobj)
		flags |= GMA500_MOCK_MAPPING_GEM;
	return flags;
}

/* Errors: EBADF, EINVAL (not a shmem file, count, range, pad), EFAULT, ENOMEM. */
int gma500_mock_page_info_ioctl(struct drm_device *dev, void *data,
				struct drm_file *file)
{
	struct drm_gma500_mock_page_info *args = data;
	struct drm_gma500_mock_page __user *user = u64_to_user_ptr(args->pages);
	struct drm_gma500_mock_page *buf = NULL;
	struct gma500_mock_object *mobj;
	struct address_space *mapping;
	struct file *filp;
	u32 done, n;
	int ret = 0;

	if (args->pad || args->count > GMA500_MOCK_PAGE_INFO_MAX ||
	    args->first_index > (MAX_LFS_FILESIZE >> PAGE_SHIFT) - args->count)
		return -EINVAL;
	filp = fget(args->fd);
	if (!filp)
		return -EBADF;
	if (!shmem_file(filp)) {
		ret = -EINVAL;
		goto out_fput;
	}
	mapping = filp->f_mapping;
	mobj = gma500_mock_find_object(to_mock_dev(dev), mapping);
	args->size = i_size_read(file_inode(filp));
	args->mapping_flags = gma500_mock_mapping_flags(mapping, mobj);

	if (args->count) {
		buf = kmalloc_array(GMA500_MOCK_CHUNK, sizeof(*buf), GFP_KERNEL);
		if (!buf) {
			ret = -ENOMEM;
			goto out_put;
		}
	}
	/* No lock is held while copying: @user may be a GEM mapping. */
	for (done = 0; done < args->count; done += n) {
		n = min_t(u32, args->count - done, GMA500_MOCK_CHUNK);
		gma500_mock_walk(mapping, args->first_index + done, n, buf, mobj);
		if (copy_to_user(user + done, buf, n * sizeof(*buf))) {
			ret = -EFAULT;
			break;
		}
	}
	kfree(buf);
out_put:
	if (mobj)
		drm_gem_object_put(&mobj->base);
out_fput:
	fput(filp);
	return ret;
}
