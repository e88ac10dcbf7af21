// SPDX-License-Identifier: GPL-2.0-only
/*
 * Mapping GEM objects through the DRM device. The mappings are VM_IO |
 * VM_PFNMAP as gma500's, so MADV_PAGEOUT and friends refuse them. Unlike
 * gma500, a fault does not pin the object: the mapping holds a reference on
 * each page it faulted in, until the object's last GEM VMA goes away.
 */

#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>

#include <drm/drm_device.h>
#include <drm/drm_gem.h>
#include <drm/drm_vma_manager.h>

#include "gma500_mock_drv.h"

/* Releases the pages the GEM mappings faulted in; with mobj->lock or from free. */
void gma500_mock_put_mapped(struct gma500_mock_object *mobj)
{
	pgoff_t i, npages = mobj->base.size >> PAGE_SHIFT;

	if (!mobj->mapped)
		return;
	for (i = 0; i < npages; i++) {
		struct page *page = mobj->mapped[i];

		if (!page)
			continue;
		/* Writes through a PFN map leave no dirty bit on the page. */
		folio_mark_dirty(page_folio(page));
		folio_mark_accessed(page_folio(page));
		put_page(page);
	}
	kvfree(mobj->mapped);
	mobj->mapped = NULL;
}

static vm_fault_t gma500_mock_gem_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct drm_gem_object *obj = vma->vm_private_data;
	struct gma500_mock_object *mobj = to_mock_obj(obj);
	pgoff_t index = vmf->pgoff - drm_vma_node_start(&obj->vma_node);
	struct page *page, *old;
	vm_fault_t ret;

	if (index >= obj->size >> PAGE_SHIFT)
		return VM_FAULT_SIGBUS;

	page = shmem_read_mapping_page(obj->filp->f_mapping, index);
	if (IS_ERR(page))
		return vmf_error(PTR_ERR(page));

	mutex_lock(&mobj->lock);
	if (unlikely(!mobj->mapped)) {
		/* Not reached: a live VMA keeps the array. */
		mutex_unlock(&mobj->lock);
		put_page(page);
		return VM_FAULT_SIGBUS;
	}
	old = mobj->mapped[index];
	if (old == page) {
		put_page(page);
	} else {
		if (old) {
			/*
			 * A hole was punched through the shmem file: unmap the
			 * old page from every GEM mapping before letting it go.
			 */
			unmap_mapping_range(obj->dev->anon_inode->i_mapping,
					    drm_vma_node_offset_addr(&obj->vma_node) +
					    ((loff_t)index << PAGE_SHIFT),
					    PAGE_SIZE, 1);
			folio_mark_dirty(page_folio(old));
			put_page(old);
		}
		mobj->mapped[index] = page;
	}
	ret = vmf_insert_pfn(vma, vmf->address, page_to_pfn(page));
	mutex_unlock(&mobj->lock);
	return ret;
}

static void gma500_mock_gem_vm_open(struct vm_area_struct *vma)
{
	struct gma500_mock_object *mobj = to_mock_obj(vma->vm_private_data);

	mutex_lock(&mobj->lock);
	mobj->map_count++;
	mutex_unlock(&mobj->lock);
	drm_gem_vm_open(vma);
}

static void gma500_mock_gem_vm_close(struct vm_area_struct *vma)
{
	struct gma500_mock_object *mobj = to_mock_obj(vma->vm_private_data);

	/* The PTEs are gone by now: the last VMA releases the pages. */
	mutex_lock(&mobj->lock);
	if (--mobj->map_count == 0)
		gma500_mock_put_mapped(mobj);
	mutex_unlock(&mobj->lock);
	drm_gem_vm_close(vma);
}

const struct vm_operations_struct gma500_mock_gem_vm_ops = {
	.fault = gma500_mock_gem_fault,
	.open = gma500_mock_gem_vm_open,
	.close = gma500_mock_gem_vm_close,
};

/* Called by drm_gem_mmap(), which holds a reference for the VMA. */
int gma500_mock_gem_mmap(struct drm_gem_object *obj,
				struct vm_area_struct *vma)
{
	struct gma500_mock_object *mobj = to_mock_obj(obj);

	/* vmf_insert_pfn() cannot give a private mapping its COW pages. */
	if (is_cow_mapping(vma->vm_flags))
		return -EINVAL;

	mutex_lock(&mobj->lock);
	if (!mobj->mapped) {
		mobj->mapped = kvcalloc(obj->size >> PAGE_SHIFT,
					sizeof(*mobj->mapped), GFP_KERNEL);
		if (!mobj->mapped) {
			mutex_unlock(&mobj->lock);
			return -ENOMEM;
		}
	}
	mobj->map_count++;
	mutex_unlock(&mobj->lock);

	/* As drm_gem_mmap_obj() does, but cached: these are ordinary pages. */
	gma500_mock_vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND |
				 VM_DONTDUMP);
	vma->vm_page_prot = vm_get_page_prot(vma->vm_flags);
	return 0;
}
