/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * gma500_mock: a DRM driver without hardware whose GEM objects behave like
 * gma500's (shmem files allocating with GFP_KERNEL | __GFP_DMA32), for
 * testing shmem's swap paths.
 */

#ifndef _GMA500_MOCK_DRV_H_
#define _GMA500_MOCK_DRV_H_

#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/version.h>

#include <drm/drm_device.h>
#include <drm/drm_gem.h>

#include <uapi/gma500_mock_drm.h>

struct drm_file;
struct drm_mode_create_dumb;
struct platform_device;

struct gma500_mock_device {
	struct drm_device drm;
	struct platform_device *pdev;
	/* every live object, for PAGE_INFO to recognise their shmem files */
	struct mutex objects_lock;
	struct list_head objects;
};

struct gma500_mock_object {
	struct drm_gem_object base;
	struct list_head link;		/* in gma500_mock_device.objects */
	struct mutex lock;		/* protects the fields below */
	unsigned int pin_count;
	struct page **pages;		/* held while pin_count > 0 */
	unsigned int map_count;		/* GEM mmap VMAs of the object */
	struct page **mapped;		/* pages faulted in by those VMAs */
};

static inline struct gma500_mock_device *to_mock_dev(struct drm_device *drm)
{
	return container_of(drm, struct gma500_mock_device, drm);
}

static inline struct gma500_mock_object *to_mock_obj(struct drm_gem_object *obj)
{
	return container_of(obj, struct gma500_mock_object, base);
}

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
/* 6.3 made vma->vm_flags read-only behind vm_flags_set(). */
static inline void gma500_mock_vm_flags_set(struct vm_area_struct *vma,
					    vm_flags_t flags)
{
	vma->vm_flags |= flags;
}
#else
static inline void gma500_mock_vm_flags_set(struct vm_area_struct *vma,
					    vm_flags_t flags)
{
	vm_flags_set(vma, flags);
}
#endif

/* gma500_mock_mmap.c */
extern const struct vm_operations_struct gma500_mock_gem_vm_ops;
int gma500_mock_gem_mmap(struct drm_gem_object *obj,
			 struct vm_area_struct *vma);
void gma500_mock_put_mapped(struct gma500_mock_object *mobj);

/* gma500_mock_gem.c */
int gma500_mock_dumb_create(struct drm_file *file, struct drm_device *dev,
			    struct drm_mode_create_dumb *args);
int gma500_mock_gem_create_ioctl(struct drm_device *dev, void *data,
				 struct drm_file *file);
int gma500_mock_pin_ioctl(struct drm_device *dev, void *data,
			  struct drm_file *file);
int gma500_mock_unpin_ioctl(struct drm_device *dev, void *data,
			    struct drm_file *file);
int gma500_mock_shmem_fd_ioctl(struct drm_device *dev, void *data,
			       struct drm_file *file);
struct gma500_mock_object *
gma500_mock_find_object(struct gma500_mock_device *mdev,
			struct address_space *mapping);

/* gma500_mock_shmem.c */
int gma500_mock_set_dma32_ioctl(struct drm_device *dev, void *data,
				struct drm_file *file);
int gma500_mock_page_info_ioctl(struct drm_device *dev, void *data,
				struct drm_file *file);

#endif /* _GMA500_MOCK_DRV_H_ */
